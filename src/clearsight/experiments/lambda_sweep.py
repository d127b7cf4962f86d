"""Distortion and non-sparsity against the sparsity weight lambda_k (SPEC B.2, the reproduction's Fig. 3 right).

Each image is explained by CartoonX and Pixel RDE once per lambda_k (default {4, 8, 16, 32, 64}, the same for
both methods); each final mask is then evaluated without optimisation: the ``l2`` distortion (Euclidean
norm of the softmax difference) of one obfuscation with ``samples`` noise draws (the reference: one), and the
mask's mean value ||s||_1 / k. Over images the results are summarised as mean and std per (method, lambda).

Ten explanations per image take minutes each on a CPU, so every (image, method, lambda) evaluation is a
unit of :mod:`clearsight.evaluation.driver`: with a ``store`` folder each finished one is kept and an
interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import MethodError
from ..evaluation.driver import Evaluation, Progress, result_options
from ..evaluation.sources import resolve_methods, with_attributes
from ..explanation import atomic_csv, atomic_write_text
from ..methods.base import Explainer
from ..methods.capabilities import methods_that
from ..methods.rde import EVAL_SEED, objective_of_explanation

LAMBDAS: tuple[float, ...] = (4.0, 8.0, 16.0, 32.0, 64.0)
#: the methods swept by default (the reproduction's two)
DEFAULT_METHODS: tuple[str, ...] = ("cartoonx", "pixel-rde")


def check_sweep(methods: Sequence[str | Explainer], lambdas: Sequence[float], samples: int) -> None:
    """Refuse a sweep that cannot run, before any explanation is spent on it: every method must be an RDE
    method (its class declares ``rde``)."""
    if not lambdas or any(not np.isfinite(lam) or lam < 0 for lam in lambdas):
        raise MethodError(f"lambda_k values must be finite and non-negative; got {list(lambdas)}")
    if samples < 1:
        raise MethodError(f"samples is the number of noise draws per evaluation (at least 1); got {samples}")
    resolved = resolve_methods(methods, build=False)
    unknown = [m.label for m in resolved if m.saved is not None or not m.can("rde")]
    if unknown:
        raise MethodError(f"the lambda sweep takes {' and '.join(methods_that('rde'))} (RDE methods); not "
                          f"{', '.join(unknown)}")


def mask_quality(clf, method: str | Explainer, image: torch.Tensor, target: int, lambda_k: float,
                 options: dict[str, Any] | None = None, samples: int = 1, seed: int = EVAL_SEED) -> dict[str, float]:
    """Explain ``image`` with ``method`` (a name made with ``options``, or an explainer) at ``lambda_k``, then
    the final mask's l2 distortion over ``samples`` seeded noise draws and its sparsity (mean mask value)."""
    from ..methods import build_explainer

    options = dict(options or {})
    if isinstance(method, str):
        explainer = build_explainer(method, {**result_options(options), "lambda_k": float(lambda_k)})
    else:
        explainer = with_attributes(method, lambda_k=float(lambda_k))
    run = {"checkpoint_dir": options["checkpoint_dir"]} if options.get("checkpoint_dir") else {}
    explanation = explainer.explain(clf, image, target, **run)
    quality = objective_of_explanation(clf, explanation, samples=samples, seed=seed, distortion_kind="l2")
    return {"distortion": quality["distortion"], "sparsity": quality["sparsity"]}


@dataclass
class LambdaSweepResults:
    """``distortion[method][lambda]`` and ``sparsity[method][lambda]``: one value per image."""

    lambdas: list[float]
    images: list[str] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    distortion: dict[str, dict[float, list[float]]] = field(default_factory=dict)
    sparsity: dict[str, dict[float, list[float]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        return list(self.distortion)

    def add(self, method: str, lambda_k: float, distortion: float, sparsity: float, seconds: float) -> None:
        self.distortion.setdefault(method, {}).setdefault(float(lambda_k), []).append(float(distortion))
        self.sparsity.setdefault(method, {}).setdefault(float(lambda_k), []).append(float(sparsity))
        self.seconds[method] = self.seconds.get(method, 0.0) + seconds

    def summary(self, method: str, quantity: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) over images of ``quantity`` ("distortion" or "sparsity") at each lambda."""
        values = getattr(self, quantity)[method]
        rows = [np.asarray(values[lam]) for lam in self.lambdas]
        return np.array([r.mean() for r in rows]), np.array([r.std() for r in rows])

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``lambda_sweep.csv`` (a row per method and lambda), ``lambda_sweep.json`` (every value) and
        ``lambda_sweep.png`` (both quantities against lambda on a log2 axis)."""
        from ..viz.curves import save_lambda_sweep_figure

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"csv": out / "lambda_sweep.csv", "json": out / "lambda_sweep.json", "png": out / "lambda_sweep.png"}
        with atomic_csv(paths["csv"]) as w:
            w.writerow(["method", "lambda_k", "distortion_mean", "distortion_std", "sparsity_mean", "sparsity_std",
                        "images"])
            for m in self.methods:
                (dm, ds), (sm, ss) = self.summary(m, "distortion"), self.summary(m, "sparsity")
                for i, lam in enumerate(self.lambdas):
                    w.writerow([m, f"{lam:g}", f"{dm[i]:.6f}", f"{ds[i]:.6f}", f"{sm[i]:.6f}", f"{ss[i]:.6f}",
                                len(self.distortion[m][lam])])
        meta = {"lambdas": self.lambdas, "images": self.images, "targets": self.targets, "skipped": self.skipped,
                "distortion": {m: {f"{k:g}": v for k, v in d.items()} for m, d in self.distortion.items()},
                "sparsity": {m: {f"{k:g}": v for k, v in d.items()} for m, d in self.sparsity.items()},
                "seconds": self.seconds, "settings": self.settings}
        save_lambda_sweep_figure(
            self.lambdas, {m: self.summary(m, "distortion") for m in self.methods},
            {m: self.summary(m, "sparsity") for m in self.methods}, paths["png"], images=len(self.images))
        atomic_write_text(paths["json"], json.dumps(meta, indent=2, default=str))  # last: the finished record
        return paths


def evaluate_lambda_sweep(clf, images: Sequence[torch.Tensor], labels: Sequence[int | None],
                          methods: Sequence[str | Explainer] = DEFAULT_METHODS, lambdas: Sequence[float] = LAMBDAS,
                          names: Sequence[str] | None = None,
                          method_options: dict[str, dict[str, Any]] | None = None, samples: int = 1,
                          seed: int = EVAL_SEED, progress: Progress | None = None,
                          store: str | Path | None = None, engine: Any = None) -> LambdaSweepResults:
    """The lambda sweep of ``methods`` (RDE methods: names made with ``method_options``, or explainer objects,
    whose ``lambda_k`` the sweep sets) over ``images``, each explained for its label (None: the prediction);
    misclassified images are skipped. ``progress`` is called once per (image, method, lambda)."""
    lambdas = [float(lam) for lam in lambdas]
    options = {m: {k: v for k, v in (method_options or {}).get(m, {}).items() if k != "lambda_k"}
               for m in methods if isinstance(m, str)}  # the sweep sets lambda_k itself
    check_sweep(methods, lambdas, samples)
    resolved = resolve_methods(methods, options)  # unknown options fail now
    parameters = {"metric": "l2 distance of softmax vectors", "samples": samples, "seed": seed}
    run = Evaluation(clf, images, labels, names, "lambda-sweep", parameters, store, engine)
    results = LambdaSweepResults(lambdas=lambdas, settings={"model": run.clf.name, **parameters,
                                                            "methods": [m.label for m in resolved]})
    point_of = {f"{m.label}-lambda{lam:g}": (m.label, lam) for m in resolved for lam in lambdas}  # unit labels
    kept, results.skipped = run.classified()
    for name, _, target in kept:
        results.images.append(name)
        results.targets.append(target)
    variants = [(f"-lambda{lam:g}", {"lambda_k": lam}) for lam in lambdas]
    planned = run.plan_methods(kept, resolved, sweep_unit, {"samples": samples, "seed": seed}, variants)
    finished = run.run(planned, results.skipped, list(point_of), progress)
    for p in planned:
        arrays = finished[p.unit]
        label, lam = point_of[p.label]
        results.add(label, lam, float(arrays["distortion"]), float(arrays["sparsity"]), float(arrays["seconds"]))
    return results


def sweep_unit(clf, image: torch.Tensor, target: int, options: dict[str, Any]) -> dict[str, np.ndarray]:
    """One (image, method, lambda) point of the sweep."""
    quality = mask_quality(clf, options["method"], image, target, options["lambda_k"], options["method_options"],
                           options["samples"], options["seed"])
    return {k: np.asarray(v) for k, v in quality.items()}

"""Distortion and non-sparsity against the sparsity weight lambda_k (SPEC B.2, the reproduction's Fig. 3 right).

Each image is explained by CartoonX and Pixel RDE once per lambda_k (default {4, 8, 16, 32, 64}, the same for
both methods); each final mask is then evaluated without optimisation: the ``l2`` distortion (Euclidean
norm of the softmax difference) of one obfuscation with ``samples`` noise draws (the reference: one), and the
mask's mean value ||s||_1 / k. Over images the results are summarised as mean and std per (method, lambda).

Ten explanations per image take minutes each on a CPU, so with a ``store`` folder every finished (image,
method, lambda) evaluation is kept and an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import MethodError
from ..methods.rde import EVAL_SEED, objective_of_explanation
from .runs import StoredRuns, skip_reporter

LAMBDAS: tuple[float, ...] = (4.0, 8.0, 16.0, 32.0, 64.0)
SWEEP_METHODS: tuple[str, ...] = ("cartoonx", "pixel-rde")


def check_sweep(methods: Sequence[str], lambdas: Sequence[float], samples: int) -> None:
    """Refuse a sweep that cannot run, before any explanation is spent on it."""
    if not lambdas or any(not np.isfinite(lam) or lam < 0 for lam in lambdas):
        raise MethodError(f"lambda_k values must be finite and non-negative; got {list(lambdas)}")
    if samples < 1:
        raise MethodError(f"samples is the number of noise draws per evaluation (at least 1); got {samples}")
    unknown = [m for m in methods if m not in SWEEP_METHODS]
    if unknown:
        raise MethodError(f"the lambda sweep takes {' and '.join(SWEEP_METHODS)}; not {', '.join(unknown)}")


def mask_quality(clf, method: str, image: torch.Tensor, target: int, lambda_k: float,
                 options: dict[str, Any] | None = None, samples: int = 1, seed: int = EVAL_SEED) -> dict[str, float]:
    """Explain ``image`` with ``method`` at ``lambda_k``, then the final mask's l2 distortion over ``samples``
    seeded noise draws and its sparsity (mean mask value)."""
    from ..methods import build_explainer

    explanation = build_explainer(method, {**(options or {}), "lambda_k": float(lambda_k)}).explain(clf, image, target)
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
        with open(paths["csv"], "w", newline="") as f:
            w = csv.writer(f)
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
        paths["json"].write_text(json.dumps(meta, indent=2, default=str))
        save_lambda_sweep_figure(
            self.lambdas, {m: self.summary(m, "distortion") for m in self.methods},
            {m: self.summary(m, "sparsity") for m in self.methods}, paths["png"], images=len(self.images))
        return paths


def evaluate_lambda_sweep(clf, images: Sequence[torch.Tensor], labels: Sequence[int | None],
                          methods: Sequence[str] = SWEEP_METHODS, lambdas: Sequence[float] = LAMBDAS,
                          names: Sequence[str] | None = None,
                          method_options: dict[str, dict[str, Any]] | None = None, samples: int = 1,
                          seed: int = EVAL_SEED, progress: Callable[[str], None] | None = None,
                          store: str | Path | None = None) -> LambdaSweepResults:
    """The lambda sweep of ``methods`` (RDE methods) over ``images``, each explained for its label (None: the
    prediction); misclassified images are skipped. ``progress`` is called once per (image, method, lambda)."""
    lambdas = [float(lam) for lam in lambdas]
    check_sweep(methods, lambdas, samples)
    options = {m: dict((method_options or {}).get(m, {})) for m in methods}
    results = LambdaSweepResults(lambdas=lambdas, settings={
        "model": clf.name, "metric": "l2 distance of softmax vectors", "samples": samples, "seed": seed,
        "methods": list(methods)})
    runs = StoredRuns(clf, images, labels, names, methods, options, store,
                      {**results.settings, "curve": "lambda-sweep"})
    keys = [f"{method}-lambda{lam:g}" for method in methods for lam in lambdas]

    for name, image, target in runs.correctly_classified(skip_reporter(results.skipped, keys, progress)):
        results.images.append(name)
        results.targets.append(target)
        for method in methods:
            for lam in lambdas:
                key = f"{method}-lambda{lam:g}"
                compute = partial(mask_quality, clf, method, image, target, lam, options[method], samples, seed)
                finished = runs.result(method, key, name, image, target, compute)
                results.add(method, lam, float(finished["distortion"]), float(finished["sparsity"]),
                            float(finished["seconds"]))
                if progress:
                    progress(key)
    return results

"""Mask initialisations compared (SPEC B.5/B.6: the reproduction's runtime experiment, ReScience Fig. 6).

Each image is explained once per initialisation (``ones``, ``random``, ``zeros``, ``foreground``, each
optionally followed by pre-optimisation: ``preoptimize`` is ``ones+preoptimize``); the per-step loss curves
are averaged over images and each final mask is scored with the objective the presets are compared on
(``label`` distortion on the fixed 256-sample noise set plus lambda_k x sparsity). The reproduction found
that pre-optimisation converges faster at first but the curves re-join, that ``foreground`` ends with a
higher loss and that ``random`` is unstable; this lets a user check that on their model and photos.

Runs that stop early (the default schedule's convergence test) have shorter histories: mean loss curves
average over the images still running at each step.
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
from ..evaluation.curves import write_curve_table
from ..evaluation.driver import Evaluation, Progress, result_options
from ..evaluation.sources import resolve_methods, with_attributes
from ..explanation import atomic_csv, atomic_write_text
from ..methods.base import Explainer
from ..methods.capabilities import methods_that
from ..methods.rde import INITS

DEFAULT_INITS: tuple[str, ...] = ("ones", "random", "preoptimize", "foreground", "foreground+preoptimize")


def init_options(variant: str) -> dict[str, Any]:
    """Explainer options of an initialisation name: ``INIT`` or ``INIT+preoptimize`` (``preoptimize`` alone:
    ones, then pre-optimisation)."""
    base, plus, extra = variant.partition("+")
    if base not in INITS or (plus and extra != "preoptimize") or (plus and base not in ("ones", "foreground")):
        choices = ", ".join([*INITS, "ones+preoptimize", "foreground+preoptimize"])
        raise MethodError(f"unknown initialisation {variant!r}; choose from {choices}")
    return {"init": base, "preoptimize": True} if plus else {"init": base}


def check_inits(inits: Sequence[str], options: dict[str, Any]) -> None:
    """Refuse unknown initialisations, and ``foreground`` without OpenCV or a mask, before any explanation."""
    if not inits:
        raise MethodError("name at least one initialisation to compare")
    variants = [init_options(v) for v in inits]
    if any(v["init"] == "foreground" for v in variants) and options.get("foreground_mask") is None:
        from ..methods.foreground import require_grabcut

        require_grabcut()


def init_run(clf, method: str | Explainer, image: torch.Tensor, target: int, variant: str,
             options: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Explain ``image`` with ``method`` (a name made with ``options``, or an explainer) from the ``variant``
    initialisation; its loss history, final objective, steps and pre-optimisation level (NaN without
    pre-optimisation)."""
    from ..methods import build_explainer

    options = dict(options or {})
    changes = {"preoptimize": False, **init_options(variant), "evaluate": True}
    if isinstance(method, str):
        explainer = build_explainer(method, {**result_options(options), **changes})
    else:
        explainer = with_attributes(method, **changes)
    run = {"checkpoint_dir": options["checkpoint_dir"]} if options.get("checkpoint_dir") else {}
    explanation = explainer.explain(clf, image, target, **run)
    level = explanation.settings.get("preopt_level")
    return {"loss": np.asarray(explanation.history["loss"], dtype=np.float32),
            "objective": np.asarray(float(explanation.arrays["objective"])),
            "steps": np.asarray(int(explanation.settings["steps_run"])),
            "preopt_level": np.asarray(np.nan if level is None else float(level))}


@dataclass
class InitResults:
    """Per initialisation: ``loss`` histories (one per image), final ``objective`` values, steps and seconds."""

    method: str
    inits: list[str]
    images: list[str] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    loss: dict[str, list[np.ndarray]] = field(default_factory=dict)
    objective: dict[str, list[float]] = field(default_factory=dict)
    steps: dict[str, list[int]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    preopt_level: dict[str, list[float]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def add(self, variant: str, run: dict[str, Any]) -> None:
        self.loss.setdefault(variant, []).append(np.asarray(run["loss"], dtype=np.float32))
        self.objective.setdefault(variant, []).append(float(run["objective"]))
        self.steps.setdefault(variant, []).append(int(run["steps"]))
        self.seconds.setdefault(variant, []).append(float(run["seconds"]))
        self.preopt_level.setdefault(variant, []).append(float(run["preopt_level"]))

    def mean_loss(self, variant: str) -> np.ndarray:
        """The loss at each step averaged over the images whose run reached that step."""
        runs = self.loss[variant]
        padded = np.full((len(runs), max(len(r) for r in runs)), np.nan)
        for i, r in enumerate(runs):
            padded[i, : len(r)] = r
        return np.nanmean(padded, axis=0)

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``inits.csv`` (a row per initialisation), ``inits_loss.csv`` (mean loss per step),
        ``inits.json`` (every value) and ``inits.png`` (the mean loss curves)."""
        from ..viz.rde import save_loss_curves_figure

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"csv": out / "inits.csv", "json": out / "inits.json", "png": out / "inits.png"}
        with atomic_csv(paths["csv"]) as w:
            w.writerow(["init", "objective_mean", "objective_std", "steps_mean", "seconds_mean",
                        "preopt_level_mean", "images"])
            for v in self.loss:
                levels = np.asarray(self.preopt_level[v])
                w.writerow([v, f"{np.mean(self.objective[v]):.6f}", f"{np.std(self.objective[v]):.6f}",
                            f"{np.mean(self.steps[v]):.1f}", f"{np.mean(self.seconds[v]):.2f}",
                            "" if np.isnan(levels).all() else f"{np.nanmean(levels):.3f}", len(self.objective[v])])
        curves = {v: self.mean_loss(v) for v in self.loss}
        longest = max((len(c) for c in curves.values()), default=0)
        paths["loss"] = write_curve_table(out / "inits_loss.csv", {
            v: np.pad(c, (0, longest - len(c)), constant_values=np.nan) for v, c in curves.items()})
        meta = {"method": self.method, "inits": self.inits, "images": self.images, "targets": self.targets,
                "skipped": self.skipped, "objective": self.objective, "steps": self.steps, "seconds": self.seconds,
                "preopt_level": self.preopt_level, "settings": self.settings}
        save_loss_curves_figure(curves, paths["png"], title=f"{self.method}: mask initialisations, "
                                f"{len(self.images)} images")
        atomic_write_text(paths["json"], json.dumps(meta, indent=2, default=str))  # last: the finished record
        return paths


def evaluate_initialisations(clf, images: Sequence[torch.Tensor], labels: Sequence[int | None],
                             method: str | Explainer = "cartoonx", inits: Sequence[str] = DEFAULT_INITS,
                             names: Sequence[str] | None = None, options: dict[str, Any] | None = None,
                             progress: Progress | None = None, store: str | Path | None = None,
                             engine: Any = None) -> InitResults:
    """Explain every correctly classified image (label None: the prediction) with ``method`` (an RDE method's
    name, made with ``options``, or an RDE explainer object) from each initialisation; ``progress`` is called
    once per (image, initialisation). With ``store`` finished runs are kept and an interrupted comparison
    resumes; ``engine`` runs the units (default: in this process)."""
    inits = list(inits)
    options = dict(options or {})
    by_name = {method: options} if isinstance(method, str) else {}
    resolved = resolve_methods([method], by_name, build=False)[0]
    if resolved.saved is not None or not resolved.can("rde"):
        raise MethodError(f"initialisations are compared for {' and '.join(methods_that('rde'))} (RDE methods); not "
                          f"{resolved.label}")
    check_inits(inits, options if isinstance(method, str) else {"foreground_mask": method.foreground_mask})
    resolved = resolve_methods([method], by_name)[0]  # unknown options fail now
    run = Evaluation(clf, images, labels, names, "initialisations", {}, store, engine)
    results = InitResults(method=resolved.label, inits=inits, settings={
        "model": run.clf.name, "method": resolved.label,
        "options": result_options(options) if isinstance(method, str) else resolved.settings(method)["settings"]})
    kept, results.skipped = run.classified()
    planned, variant_of = [], {}
    for name, image, target in kept:
        results.images.append(name)
        results.targets.append(target)
        source = resolved.source(name, target)
        for variant in inits:
            unit_options = {"method": source, "method_options": resolved.options, "variant": variant}
            p = run.plan(name, image, target, f"{resolved.label}-{variant}",
                         {**resolved.settings(source), "init": variant}, init_unit, unit_options, label=variant)
            planned.append(p)
            variant_of[p.unit] = variant
    finished = run.run(planned, results.skipped, inits, progress)
    for p in planned:
        results.add(variant_of[p.unit], finished[p.unit])
    return results


def init_unit(clf, image: torch.Tensor, target: int, options: dict[str, Any]) -> dict[str, np.ndarray]:
    """One (image, initialisation) run."""
    return init_run(clf, options["method"], image, target, options["variant"], options["method_options"])

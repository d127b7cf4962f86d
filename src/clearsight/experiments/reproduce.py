"""``clearsight reproduce moxi|cartoonx``: each experiment of a paper re-run on your model and photos, and every
claim of the paper beside our number (:mod:`clearsight.experiments.claims`).

An experiment is a set of units (:class:`clearsight.engine.Unit`: experiment, image, method, settings) run on
an engine (in this process, or on a Ray cluster) through one store (``OUT/units``): a finished unit is never
computed again, so a killed run resumes and a later session continues it. Each experiment then boils its
units down to a JSON *summary* (the contract in :mod:`clearsight.experiments.claims.summary`) and figures in
``OUT/PAPER/EXPERIMENT/``; ``OUT/PAPER/results.md`` is rebuilt from every summary present, so figures and
tables regenerate from the stored units alone (a second run with everything stored computes nothing).

Our setting differs from the papers' where the paper's cannot be had offline (ImageNet validation, ViT-T
weights, trained 10/20/100-class models); each summary carries its ``deviations`` and results.md lists them
beside the numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import MethodError
from ..evaluation.rate_distortion import POINTS as RD_POINTS

#: the MoXI paper's methods on ImageNet (rollout only where the model is a ViT)
MOXI_METHODS = ("moxi", "moxi-minus", "shapley", "gradcam", "gradcampp", "rollout")
#: the MoXI paper's Shapley baseline: 200 rounds of plain sampling (Table 1)
PAPER_SHAPLEY_ROUNDS = 200
#: the corruptions of a default run (``--corruptions all`` takes the 12 of clearsight.corruptions)
DEFAULT_CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "fog", "jpeg_compression")
CONSISTENCY_CLASSES = (10, 20, 100, 1000)
CURVES = ("insertion", "deletion")
#: photos whose insertion and deletion curves are computed before the next photos' (see :func:`moxi_curves`)
CURVE_GROUP = 4


#: experiments that do not use the run's model (SET-SUM trains its own): one result folder, not one per model
MODEL_FREE = frozenset({"set-sum"})


def model_folder(clf: Any) -> str:
    """A model's result folder name: its name made safe for a path, and the start of its weights' digest (two
    checkpoints of one architecture share a name but not their results)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(clf.name)).strip("-.") or "model"
    return f"{name}-{clf.weights_digest()[:8]}"


@dataclass
class Reproduction:
    """One ``clearsight reproduce`` run: the paper, the model (a :class:`~clearsight.evaluation.driver.ModelSpec`),
    the photos and their labels, the output folder and the engine.

    ``options`` holds the experiments' knobs (``shapley_rounds``, ``shapley_sampling``, ``patch_size``,
    ``steps`` for CartoonX/Pixel RDE, ``points`` of the rate-distortion curves, ``lambdas``, ``corruptions``,
    ``heatmap_images``, ``set_sum_*``);
    ``other_model`` is the second architecture of the CartoonX CNN-vs-ViT experiments.
    """

    paper: str
    model: Any
    images: Sequence[Path]
    labels: dict[str, int]
    out: Path
    engine: Any = None
    seed: int = 0
    other_model: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    progress: Callable[[str], None] | None = None

    # ---- what every experiment shares -------------------------------------------------------------
    @cached_property
    def clf(self):
        return self.model.load()

    @cached_property
    def other_clf(self):
        return self.other_model.load() if self.other_model is not None else None

    @cached_property
    def photos(self) -> list[torch.Tensor]:
        return [self.clf.prepare(p) for p in self.images]

    @property
    def names(self) -> list[str]:
        return [Path(p).name for p in self.images]

    @property
    def targets(self) -> list[int | None]:
        return [self.labels.get(name) for name in self.names]

    @property
    def store(self) -> Path:
        return self.out / "units"

    def folder(self, experiment: str) -> Path:
        """Where ``experiment`` writes its figures and summary: ``OUT/PAPER/EXPERIMENT/MODEL``, a folder per
        model (its name and a digest of its weights), so that a run on a second model (the MoXI paper's
        ResNet-18 curves beside its ViT's) adds its results beside the first's instead of replacing them;
        experiments that do not use ``--model`` (:data:`MODEL_FREE`) write to ``OUT/PAPER/EXPERIMENT``.

        The folder is not made here: each writer makes it with its first file, so a run stopped before an
        experiment wrote anything leaves no empty folder behind."""
        path = self.out / self.paper / experiment
        return path if experiment in MODEL_FREE else path / self.model_dir

    @cached_property
    def model_dir(self) -> str:
        """:func:`model_folder` of the run's model, once (a module of your own has its weights hashed anew on
        every digest)."""
        return model_folder(self.clf)

    def work_model(self, spec: Any = None, clf: Any = None):
        """What the evaluation functions get as their model: the loaded classifier for the local engine, the
        spec for an engine whose workers load it themselves."""
        from ..engine import LocalEngine

        spec, clf = (spec, clf) if spec is not None else (self.model, self.clf)
        return clf if self.engine is None or isinstance(self.engine, LocalEngine) else spec

    @property
    def is_vit(self) -> bool:
        return bool(getattr(self.clf, "is_token_model", False))

    def common(self, images: int, **extra: Any) -> dict[str, Any]:
        return {"model": self.clf.name, "architecture": "vit" if self.is_vit else "cnn", "images": int(images),
                "deviations": list(self.deviations), **extra}

    @property
    def deviations(self) -> list[str]:
        notes = []
        rounds = int(self.options.get("shapley_rounds", PAPER_SHAPLEY_ROUNDS))
        if rounds != PAPER_SHAPLEY_ROUNDS or self.options.get("shapley_sampling", "plain") != "plain":
            notes.append(f"Shapley values from {rounds} rounds of {self.options.get('shapley_sampling', 'plain')} "
                         f"sampling, not the paper's {PAPER_SHAPLEY_ROUNDS} plain rounds (noisier values; the "
                         "runtime table scales Shapley's seconds to the paper's setting by model passes).")
        if self.options.get("patch_size"):
            notes.append(f"patches of {self.options['patch_size']} pixels, not the model's token patch.")
        if self.options.get("steps"):
            notes.append(f"CartoonX / Pixel RDE optimised for {self.options['steps']} steps, not the preset's.")
        if self.rd_points != RD_POINTS:
            notes.append(f"rate-distortion curves at {self.rd_points} points, not {RD_POINTS} (1% steps).")
        return notes

    @property
    def rd_points(self) -> int:
        """Points of every rate-distortion curve (the reproduction's 1% steps unless ``options["points"]``
        asks for a coarser curve: each point is one model pass per method, image and figure)."""
        return int(self.options.get("points", RD_POINTS))

    def report(self, label: str) -> None:
        if self.progress:
            self.progress(label)

    # ---- shared pieces -------------------------------------------------------------------------------
    def moxi_methods(self) -> list[str]:
        chosen = self.options.get("methods") or MOXI_METHODS
        return [m for m in chosen if m != "rollout" or self.is_vit]

    def method_options(self) -> dict[str, dict[str, Any]]:
        shapley = {"rounds": int(self.options.get("shapley_rounds", PAPER_SHAPLEY_ROUNDS)),
                   "sampling": self.options.get("shapley_sampling", "plain"), "seed": self.seed}
        return {"shapley": shapley}

    def curves(self, curve: str, methods: Sequence[str] | None = None, limit: int | None = None,
               absence: Any = None, first: int = 0, progress: Any = None):
        """``curve`` of each method over photos ``first`` up to ``limit`` (default: to the last), reported to
        ``progress`` (default: the run's)."""
        from ..evaluation import evaluate_curves

        chosen = slice(first, len(self.photos) if limit is None else limit)
        return evaluate_curves(self.work_model(), self.photos[chosen], self.targets[chosen], list(methods or
                               self.moxi_methods()), curve, names=self.names[chosen], absence=absence,
                               method_options=self.method_options(), patch_size=self.options.get("patch_size"),
                               progress=progress or self.progress, store=self.store, engine=self.engine)


def curve_set(results) -> dict[str, Any]:
    """A :class:`~clearsight.evaluation.CurveResults` as the summary's ``CurveSet``."""
    return {"accuracy": {m: results.accuracy(m).tolist() for m in results.methods}, "auc": results.aucs()}


# ---- MoXI paper -------------------------------------------------------------------------------------------
def moxi_curves(run: Reproduction) -> dict[str, Any]:
    """Fig. 3/8/9: insertion and deletion accuracy curves of every method (full orders).

    The photos go in groups of :data:`CURVE_GROUP`, both curves of a group before the next group: a run
    stopped part-way (hours, over sessions) leaves every curve of its first photos stored, which a smaller
    ``--limit`` turns into a complete result, rather than insertion for all photos and deletion for none."""
    folder, summary = run.folder("curves"), {}
    # the bar's total is every group's units from the start (one per photo, method and curve), not group by group
    expect, progress = getattr(run.progress, "expect", None), run.progress
    if expect is not None and progress is not None:
        expect(len(run.photos) * len(run.moxi_methods()) * len(CURVES))
        progress = lambda label: run.progress(label)  # noqa: E731 (without expect: the total is told)
    joined: dict[str, Any] = {}
    for first in range(0, max(1, len(run.photos)), CURVE_GROUP):
        for curve in CURVES:
            part = run.curves(curve, first=first, limit=first + CURVE_GROUP, progress=progress)
            joined[curve] = joined[curve].extend(part) if curve in joined else part
    for curve in CURVES:
        results = joined[curve]
        written = results.save(folder)
        summary[curve] = curve_set(results)
        summary["patches"] = int(results.settings.get("steps", 0))
        summary.setdefault("figures", []).append(str(written["png"]))
        images = len(results.images)
    return {**run.common(images), **summary}


def first_flip(correct: np.ndarray, curve: str) -> int:
    """Patches inserted until the prediction is right (insertion) or deleted until it is wrong (deletion);
    the curve's length when it never flips."""
    hits = np.flatnonzero(correct if curve == "insertion" else ~correct)
    return int(hits[0]) if hits.size else len(correct) - 1


def moxi_heatmaps(run: Reproduction) -> dict[str, Any]:
    """Fig. 4: the patches each method inserts until the prediction is right (deletes until it is wrong),
    coloured by when, for the first photos; the full orders come from the curves' stored units."""
    from ..methods.moxi import order_heat
    from ..viz.grids import save_heatmap_grid

    limit = min(len(run.photos), int(run.options.get("heatmap_images", 4)))
    folder, steps, figures = run.folder("heatmaps"), {}, []
    images = 0
    for curve in CURVES:
        results = run.curves(curve, limit=limit)
        images = len(results.images)
        heat: dict[str, list[np.ndarray]] = {}
        grid = results.settings.get("grid") or [int(math.isqrt(int(results.settings["steps"])))] * 2
        for method in results.methods:
            per_image = [first_flip(c, curve) for c in results.correct[method]]
            steps.setdefault(curve, {})[method] = per_image
            heat[method] = [order_heat(torch.as_tensor(order), used, len(order)).reshape(grid).numpy()
                            for order, used in zip(results.orders.get(method, []), per_image)]
        photos = [run.photos[run.names.index(name)] for name in results.images]
        what = "inserted until correct" if curve == "insertion" else "deleted until wrong"
        path = save_heatmap_grid(photos, heat, folder / f"{curve}.png",
                                 title=f"{run.clf.name}: patches {what}, earliest red",
                                 row_labels=results.images, steps=steps[curve])
        figures.append(str(path))
    return {**run.common(images), "steps": steps, "figures": figures}


def runtime_unit(clf, image: torch.Tensor, target: int, options: dict[str, Any]) -> dict[str, np.ndarray]:
    """One timed explanation (the unit adds its ``seconds``): MoXI until the prediction flips, the others in
    full; ``steps`` is MoXI's greedy steps (0 for the others)."""
    from ..methods import build_explainer

    options = dict(options)
    method = options.pop("method")
    explanation = build_explainer(method, options).explain(clf, image, target)
    stop = explanation.settings.get("stop_step")
    return {"steps": np.asarray(-1 if stop is None else int(stop)), "passes": np.asarray(explanation.cost["passes"])}


def moxi_runtime(run: Reproduction) -> dict[str, Any]:
    """Table 1: seconds per image of each method (MoXI split into insertion until success and deletion until
    failure, as the paper times it) and MoXI's median greedy steps."""
    from ..evaluation.driver import Evaluation

    variants: dict[str, tuple[str, dict[str, Any]]] = {
        "gradcam": ("gradcam", {}), "rollout": ("rollout", {}),
        "shapley": ("shapley", run.method_options()["shapley"]),
        "moxi-insertion": ("moxi", {"mode": "insertion"}), "moxi-deletion": ("moxi", {"mode": "deletion"})}
    if not run.is_vit:
        variants.pop("rollout")
    game = {"patch_size": run.options["patch_size"]} if run.options.get("patch_size") else {}
    evaluation = Evaluation(run.work_model(), run.photos, run.targets, run.names, "runtime", {},
                            store=run.store, engine=run.engine)
    kept, skipped = evaluation.classified()
    planned = []
    for name, image, target in kept:
        for label, (method, opts) in variants.items():
            options = {"method": method, **opts, **(game if method in ("moxi", "shapley") else {})}
            planned.append(evaluation.plan(name, image, target, label, options, runtime_unit, options, label))
    done = evaluation.run(planned, skipped, list(variants), run.progress)
    seconds: dict[str, list[float]] = {label: [] for label in variants}
    steps: dict[str, list[int]] = {"insertion": [], "deletion": []}
    patches = int(np.prod(evaluation_grid(run)))
    shapley = run.method_options()["shapley"]
    paper_setting = shapley["rounds"] == PAPER_SHAPLEY_ROUNDS and shapley["sampling"] == "plain"
    measured_shapley: list[float] = []
    for p in planned:
        arrays = done[p.unit]
        seconds[p.label].append(float(arrays["seconds"]))
        if p.label.startswith("moxi-"):
            steps[p.label.removeprefix("moxi-")].append(int(arrays["steps"]))
        if p.label == "shapley" and not paper_setting:  # Table 1 times the paper's 200 plain rounds
            measured_shapley.append(seconds["shapley"].pop())
            seconds["shapley"].append(measured_shapley[-1] * paper_shapley_passes(patches) / float(arrays["passes"]))
    labels = {m: m for m in seconds}
    deviations = list(run.deviations)
    if measured_shapley:
        seconds["shapley-measured"] = measured_shapley
        labels["shapley"] = f"shapley ({PAPER_SHAPLEY_ROUNDS} plain rounds: extrapolated from the measured, by passes)"
        labels["shapley-measured"] = f"shapley (measured: {shapley['rounds']} {shapley['sampling']} rounds)"
        deviations.append(f"Shapley's seconds at the paper's {PAPER_SHAPLEY_ROUNDS} plain rounds "
                          f"({paper_shapley_passes(patches)} passes) are the measured seconds of "
                          f"{shapley['rounds']} {shapley['sampling']} rounds scaled by the passes of each; the "
                          "measured ones are in runtime.csv")
    folder = run.folder("runtime")
    lines = ["method,mean_seconds,median_seconds,images"]
    lines += [f"{labels[m]},{np.mean(v):.4f},{np.median(v):.4f},{len(v)}" for m, v in seconds.items() if v]
    for mode, values in steps.items():
        lines.append(f"moxi greedy steps ({mode}),{np.mean(values) if values else float('nan'):.2f},"
                     f"{np.median(values) if values else float('nan'):.1f},{len(values)}")
    _write_text(folder / "runtime.csv", "\n".join(lines) + "\n")
    return {**run.common(len(kept)), "seconds": seconds, "greedy_steps": steps, "patches": patches,
            "figures": [str(folder / "runtime.csv")], "deviations": deviations}


def paper_shapley_passes(patches: int) -> int:
    """Model passes of the paper's Shapley baseline on ``patches`` players."""
    from ..methods.shapley import passes_per_round

    return PAPER_SHAPLEY_ROUNDS * passes_per_round(patches, "plain")


def evaluation_grid(run: Reproduction) -> tuple[int, int]:
    from ..parts import PatchGrid

    return PatchGrid.for_classifier(run.clf, run.options.get("patch_size")).shape


def moxi_corruptions(run: Reproduction) -> dict[str, Any]:
    """Fig. 6, 13, 14: deletion curves where deleted patches show the photo corrupted at severity 5."""
    from ..evaluation.replacement import corruption_replacement, evaluate_replacement_curves

    names = run.options.get("corruptions") or DEFAULT_CORRUPTIONS
    folder, sets, figures, images = run.folder("corruptions"), {}, [], 0
    for name in names:
        results = evaluate_replacement_curves(
            run.work_model(), run.photos, run.targets, run.moxi_methods(), corruption_replacement(name, 5, run.seed),
            names=run.names, method_options=run.method_options(), patch_size=run.options.get("patch_size"),
            progress=run.progress, store=run.store, engine=run.engine)
        figures.append(str(results.save(folder)["png"]))
        sets[name] = curve_set(results)
        images = len(results.images)
    return {**run.common(images), "severity": 5, "corruptions": sets, "figures": figures}


def moxi_adversarial(run: Reproduction) -> dict[str, Any]:
    """Fig. 15, 16: deletion curves where deleted patches show an L2 PGD example, and each patch's
    perturbation norm along each method's deletion order."""
    from ..evaluation.replacement import (
        adversarial_replacement,
        evaluate_replacement_curves,
        perturbation_norms_by_order,
        save_perturbation_norms,
    )

    replace = adversarial_replacement(1.0, 0.2, 10)
    results = evaluate_replacement_curves(
        run.work_model(), run.photos, run.targets, run.moxi_methods(), replace, names=run.names,
        method_options=run.method_options(), patch_size=run.options.get("patch_size"), progress=run.progress,
        store=run.store, engine=run.engine)
    folder = run.folder("adversarial")
    figures = [str(results.save(folder)["png"])]
    norms = {}
    if results.images:
        photos = {n: run.photos[run.names.index(n)] for n in results.images}
        norms = perturbation_norms_by_order(results, replace, run.clf, photos, run.options.get("patch_size"))
        figures.append(str(save_perturbation_norms(norms, folder, results.name)["png"]))
    return {**run.common(len(results.images)), "epsilon": 1.0, "step": 0.2, "deletion": curve_set(results),
            "perturbation_norms": {m: np.asarray(v).tolist() for m, v in norms.items()}, "figures": figures}


def moxi_set_sum(run: Reproduction) -> dict[str, Any]:
    """Fig. 2: the visual SET-SUM task on its own small CNN (the run's model is not used)."""
    from .set_sum import reproduce_set_sum

    folder = run.folder("set-sum")
    folder.mkdir(parents=True, exist_ok=True)  # its model is saved there before the curves are computed
    result = reproduce_set_sum(folder, train_size=int(run.options.get("set_sum_train", 30000)),
                               epochs=int(run.options.get("set_sum_epochs", 10)),
                               test_size=int(run.options.get("set_sum_test", 200)), seed=run.seed,
                               rounds=int(run.options.get("shapley_rounds", PAPER_SHAPLEY_ROUNDS)),
                               progress=run.progress)
    curves = result.curves
    return {"model": "SetSumNet-16 (clearsight.experiments.set_sum)", "architecture": "cnn",
            "images": len(curves.images), "insertion": curve_set(curves), "patches": 4,
            "accuracy": {"uniform": result.accuracy_uniform, "largest_twice": result.accuracy_largest_twice},
            "deviations": ["SET-SUM on scikit-learn's 8x8 digits (upsampled to 16x16) and a small max-pooling CNN, "
                           "not MNIST on ResNet-18."],
            "figures": [str(folder / f"{curves.name}.png")]}


def moxi_class_discriminative(run: Reproduction) -> dict[str, Any]:
    """Fig. 5: one photo holding two classes (two sample photos side by side: no such photo ships offline);
    MoXI deletion for the predicted class and class-discriminative deletion for the runner-up."""
    from ..methods import build_explainer
    from ..viz.grids import save_heatmap_grid

    if len(run.photos) < 2:
        raise MethodError("class-discriminative needs at least two photos (they are put side by side)")
    left, right = run.photos[0], run.photos[1]
    h, w = left.shape[-2:]
    pair = torch.cat([left[:, :, ::2], right[:, :, ::2]], dim=2)[:, :, :w]  # each half squeezed to half width
    pair = torch.nn.functional.interpolate(pair[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    logits = run.clf.logits(pair[None].to(run.clf.device))[0]
    top2 = [int(i) for i in logits.topk(2).indices]
    game = {"patch_size": run.options["patch_size"]} if run.options.get("patch_size") else {}
    heat = {}
    for cls in top2:
        explanation = build_explainer("moxi", {"mode": "deletion", **game}).explain(run.clf, pair, cls)
        heat[f"{run.clf.class_name(cls)}"] = [np.asarray(explanation.arrays["grid"])]
        run.report(f"class {cls}")
    folder = run.folder("class-discriminative")
    path = save_heatmap_grid([pair], heat, folder / "class_discriminative.png",
                             title=f"{run.clf.name}: MoXI deletion per class (left: predicted)",
                             row_labels=[f"{run.names[0]} | {run.names[1]}"])
    return {**run.common(1, classes=[run.clf.class_name(c) for c in top2]), "figures": [str(path)],
            "deviations": [*run.deviations, "two sample photos side by side stand in for a photo of two classes"]}


def consistency_unit(clf, image: torch.Tensor, target: int, options: dict[str, Any]) -> dict[str, np.ndarray]:
    """A curve of one method on the model with its output restricted to ``classes`` classes (the target and
    a seeded random choice of the others)."""
    from ..evaluation.curves import image_curve, method_order
    from ..methods.capabilities import can
    from ..models.restricted import restrict_classes
    from ..parts import PatchGame, PatchGrid

    options = dict(options)
    method, curve, classes = options.pop("method"), options.pop("curve"), int(options.pop("classes"))
    seed, patch_size = int(options.pop("seed")), options.pop("patch_size", None)
    if patch_size and can(method, "patch_game"):  # the method's players are the curve's patches
        options["patch_size"] = patch_size
    restricted, local_target = restrict_classes(clf, target, classes, seed)
    grid = PatchGrid.for_classifier(restricted, patch_size)
    order = method_order(method, restricted, image, local_target, curve, options, grid)
    game = PatchGame(restricted, image, local_target, grid=grid)
    scores, predictions = image_curve(game, order, curve)
    return {"scores": scores.astype(np.float32), "correct": predictions == local_target}


def moxi_consistency(run: Reproduction) -> dict[str, Any]:
    """Fig. 7 (offline analogue): the same model with its output restricted to 10, 20, 100 and 1000 classes;
    do a method's insertion/deletion AUCs stay alike across them?"""
    from ..evaluation.curves import auc
    from ..evaluation.driver import Evaluation

    classes = [c for c in run.options.get("classes", CONSISTENCY_CLASSES) if c <= run.clf.num_classes]
    methods = [m for m in run.options.get("consistency_methods", ("moxi", "moxi-minus", "gradcam", "rollout"))
               if m != "rollout" or run.is_vit]
    game = {"patch_size": run.options["patch_size"]} if run.options.get("patch_size") else {}
    evaluation = Evaluation(run.work_model(), run.photos, run.targets, run.names, "consistency", {},
                            store=run.store, engine=run.engine)
    kept, skipped = evaluation.classified()
    planned = []
    labels = [f"{m}-{c}-{k}" for m in methods for c in CURVES for k in classes]
    for name, image, target in kept:
        for m in methods:
            for curve in CURVES:
                for k in classes:
                    options = {"method": m, "curve": curve, "classes": k, "seed": run.seed, **game}
                    planned.append(evaluation.plan(name, image, target, f"{m}-{curve}-{k}", options,
                                                   consistency_unit, options, f"{m}-{curve}-{k}"))
    done = evaluation.run(planned, skipped, labels, run.progress)
    summary: dict[str, Any] = {"classes": classes}
    for curve in CURVES:
        accuracy = {m: {str(k): np.mean([done[p.unit]["correct"] for p in planned
                                          if p.label == f"{m}-{curve}-{k}"], axis=0).tolist()
                        for k in classes} for m in methods} if kept else {}
        summary[curve] = {"accuracy": accuracy,
                          "auc": {m: {k: auc(v) for k, v in per.items()} for m, per in accuracy.items()}}
    folder = run.folder("consistency")
    lines = ["curve,method," + ",".join(f"auc_{k}_classes" for k in classes)]
    for curve in CURVES:
        for m, per in summary[curve]["auc"].items():
            lines.append(f"{curve},{m}," + ",".join(f"{per[str(k)]:.4f}" for k in classes))
    _write_text(folder / "consistency.csv", "\n".join(lines) + "\n")
    from ..viz.grids import save_consistency_figure

    figure = save_consistency_figure(summary, folder / "consistency.png", title=f"{run.clf.name}: AUC per class count")
    return {**run.common(len(kept)), **summary, "figures": [str(figure)],
            "deviations": [*run.deviations, "one model with its output restricted to K classes (the target and "
                           "K-1 seeded random others), not models trained on K classes"]}


# ---- CartoonX reproduction -----------------------------------------------------------------------------
def rde_options(run: Reproduction) -> dict[str, dict[str, Any]]:
    base = {"seed": run.seed, **({"steps": int(run.options["steps"])} if run.options.get("steps") else {})}
    return {"cartoonx": dict(base), "pixel-rde": dict(base)}


def rd_summary(results) -> dict[str, Any]:
    return {"mean": {m: results.mean(m).tolist() for m in results.methods},
            "normalized": {m: results.normalized(m).tolist() for m in results.methods}}


def rate_distortion_runs(run: Reproduction, spec: Any, clf: Any, methods: Sequence[str], folder: Path
                         ) -> tuple[dict[str, Any], list[str], int, dict[str, Any]]:
    from ..evaluation import evaluate_rate_distortion

    summary, figures, images, results_by = {}, [], 0, {}
    photos = [clf.prepare(p) for p in run.images]
    for figure in ("keep", "randomize"):
        results = evaluate_rate_distortion(run.work_model(spec, clf), photos, run.targets, list(methods), figure,
                                           names=run.names, method_options=rde_options(run), seed=run.seed,
                                           points=run.rd_points, progress=run.progress, store=run.store,
                                           engine=run.engine)
        figures.append(str(results.save(folder)["png"]))
        summary[figure] = rd_summary(results)
        images, results_by[figure] = len(results.images), results
    return summary, figures, images, results_by


def cartoonx_rate_distortion(run: Reproduction) -> dict[str, Any]:
    """Fig. 3 left/middle: distortion as the most relevant components are kept (the rest randomised) or
    randomised, CartoonX and Pixel RDE against random-wavelet and random-pixel rankings."""
    methods = ("cartoonx", "pixel-rde", "random-wavelet", "random-pixel")
    summary, figures, images, _ = rate_distortion_runs(run, run.model, run.clf, methods, run.folder("rate-distortion"))
    return {**run.common(images), **summary, "figures": figures}


def cartoonx_lambda(run: Reproduction) -> dict[str, Any]:
    """Fig. 3 right: distortion and sparsity of CartoonX and Pixel RDE at each lambda_k."""
    from .lambda_sweep import LAMBDAS, evaluate_lambda_sweep

    lambdas = [float(v) for v in run.options.get("lambdas") or LAMBDAS]
    options = rde_options(run)
    results = evaluate_lambda_sweep(run.work_model(), run.photos, run.targets, ["cartoonx", "pixel-rde"], lambdas,
                                    names=run.names, method_options=options, seed=run.seed,
                                    progress=run.progress, store=run.store, engine=run.engine)
    written = results.save(run.folder("lambda"))
    summary = {"lambdas": lambdas}
    for quantity in ("distortion", "sparsity"):
        summary[quantity] = {m: {f"{lam:g}": float(v) for lam, v in zip(lambdas, results.summary(m, quantity)[0])}
                             for m in results.methods}
    return {**run.common(len(results.images)), **summary, "figures": [str(written["png"])]}


def cartoonx_inits(run: Reproduction) -> dict[str, Any]:
    """Fig. 6: CartoonX from each mask initialisation: mean loss curves and final losses."""
    from .initialisations import evaluate_initialisations

    variants = list(run.options.get("inits") or ("ones", "random", "preoptimize"))
    results = evaluate_initialisations(run.work_model(), run.photos, run.targets, "cartoonx", variants,
                                       names=run.names, options=rde_options(run)["cartoonx"],
                                       progress=run.progress, store=run.store, engine=run.engine)
    written = results.save(run.folder("inits"))
    return {**run.common(len(results.images)), "figures": [str(written["png"])],
            "loss": {v: results.mean_loss(v).tolist() for v in results.loss},
            "final": {v: list(map(float, results.objective[v])) for v in results.objective}}


def cartoonx_runtime(run: Reproduction) -> dict[str, Any]:
    """Sec. 3.6: seconds per image of CartoonX and Pixel RDE (the rate-distortion run's explanations when
    stored, else computed)."""
    from ..evaluation.driver import Evaluation

    evaluation = Evaluation(run.work_model(), run.photos, run.targets, run.names, "rde-runtime", {},
                            store=run.store, engine=run.engine)
    kept, skipped = evaluation.classified()
    planned = [evaluation.plan(name, image, target, m, {"method": m, **rde_options(run)[m]}, runtime_unit,
                               {"method": m, **rde_options(run)[m]}, m)
               for name, image, target in kept for m in ("cartoonx", "pixel-rde")]
    done = evaluation.run(planned, skipped, ["cartoonx", "pixel-rde"], run.progress)
    seconds: dict[str, list[float]] = {"cartoonx": [], "pixel-rde": []}
    for p in planned:
        seconds[p.label].append(float(done[p.unit]["seconds"]))
    folder = run.folder("runtime")
    _write_text(folder / "runtime.csv", "method,mean_seconds,images\n" + "".join(
        f"{m},{np.mean(v) if v else float('nan'):.2f},{len(v)}\n" for m, v in seconds.items()))
    return {**run.common(len(kept)), "seconds": seconds, "figures": [str(folder / "runtime.csv")]}


def cartoonx_vit(run: Reproduction) -> dict[str, Any]:
    """Fig. 4-5: rate-distortion curves of a CNN and a ViT on the photos both classify correctly, normalised,
    with attention rollout on the ViT, and the masks' sparsity."""
    from ..evaluation.rate_distortion import compare_figure

    check_models(["vit"], run.other_model)
    pairs = [(run.model, run.clf), (run.other_model, run.other_clf)]
    by_kind: dict[str, Any] = {}
    folder = run.folder("vit")
    for spec, clf in pairs:
        kind = "vit" if getattr(clf, "is_token_model", False) else "cnn"
        methods = ["cartoonx", "random-wavelet"] + (["rollout"] if kind == "vit" else [])
        sub = folder / kind
        summary, figures, images, results = rate_distortion_runs(run, spec, clf, methods, sub)
        by_kind[kind] = {"model": clf.name, **summary, "images": images, "paths": {
            f: str(sub / f"rd-{f}.json") for f in ("keep", "randomize")}}
    if set(by_kind) != {"cnn", "vit"}:
        raise MethodError("the vit experiment needs one CNN and one ViT (--model and --other-model)")
    figures = [str(compare_figure([by_kind["cnn"]["paths"][f], by_kind["vit"]["paths"][f]],
                                  folder / f"cnn-vs-vit-{f}.png", normalized=True, common_images=True))
               for f in ("keep", "randomize")]
    return {"model": f"{by_kind['cnn']['model']} vs {by_kind['vit']['model']}", "architecture": "both",
            "images": min(by_kind["cnn"]["images"], by_kind["vit"]["images"]),
            "cnn": {k: v for k, v in by_kind["cnn"].items() if k != "paths"},
            "vit": {k: v for k, v in by_kind["vit"].items() if k != "paths"},
            "figures": figures, "deviations": list(run.deviations)}


def cartoonx_qualitative(run: Reproduction) -> dict[str, Any]:
    """Fig. 1-2: photo, CartoonX and Pixel RDE for the run's model(s), the first photos."""
    from ..methods import build_explainer
    from ..viz.grids import save_qualitative_grid

    limit = min(len(run.photos), int(run.options.get("qualitative_images", 3)))
    folder, figures = run.folder("qualitative"), []
    models = [(run.clf, run.photos)]
    if run.other_clf is not None:
        models.append((run.other_clf, [run.other_clf.prepare(p) for p in run.images]))
    for clf, photos in models:
        rows = []
        for name, photo in zip(run.names[:limit], photos[:limit]):
            row = {"photo": photo}
            for method in ("cartoonx", "pixel-rde"):
                explanation = build_explainer(method, rde_options(run)[method]).explain(
                    clf, photo, checkpoint_dir=run.store / ".checkpoints")
                row[method] = explanation
                run.report(f"{method} {name}")
            rows.append((name, row))
        figures.append(str(save_qualitative_grid(rows, folder / f"{_safe(clf.name)}.png", title=clf.name)))
    return {**run.common(limit), "figures": figures}


PAPERS: dict[str, dict[str, Callable[[Reproduction], dict[str, Any]]]] = {
    "moxi": {"curves": moxi_curves, "heatmaps": moxi_heatmaps, "class-discriminative": moxi_class_discriminative,
             "corruptions": moxi_corruptions, "adversarial": moxi_adversarial, "set-sum": moxi_set_sum,
             "consistency": moxi_consistency, "runtime": moxi_runtime},
    "cartoonx": {"qualitative": cartoonx_qualitative, "rate-distortion": cartoonx_rate_distortion,
                 "lambda": cartoonx_lambda, "vit": cartoonx_vit, "inits": cartoonx_inits,
                 "runtime": cartoonx_runtime},
}


def check_experiments(paper: str, only: Sequence[str] | None) -> list[str]:
    """The experiments to run, in the paper's order; unknown names are refused before any work."""
    if paper not in PAPERS:
        raise MethodError(f"unknown paper {paper!r}; choose moxi or cartoonx")
    names = list(PAPERS[paper])
    if not only:
        return names
    unknown = [e for e in only if e not in PAPERS[paper]]
    if unknown:
        raise MethodError(f"unknown {paper} experiment {', '.join(unknown)}; choose from {', '.join(names)}")
    return [e for e in names if e in set(only)]


def check_models(experiments: Sequence[str], other_model: Any) -> None:
    """Refuse, before any model loads, experiments that need a second model when none is given."""
    if "vit" in experiments and other_model is None:
        rest = ",".join(e for e in experiments if e != "vit")
        raise MethodError("the vit experiment compares two models: give --other-model (a CNN when --model is a "
                          "ViT, or the other way round)" + (f", or leave vit out: --only {rest}" if rest else ""))


def write_results(out: Path, paper: str) -> Path:
    """``OUT/PAPER/results.md`` from the stored summaries alone (no model, nothing recomputed)."""
    from .claims import DEVIATIONS, claims_table, read_summaries, write_results_md

    summaries, commands = read_summaries(out, paper)
    rows = claims_table(paper, summaries, commands, DEVIATIONS.get(paper, ()))
    runs = [r for s in summaries.values() for r in ([s] if isinstance(s, dict) else s)]  # a list: one per model
    models = sorted({str(r.get("model")) for r in runs if r.get("model")})
    return write_results_md(out / paper / "results.md", rows, {
        "paper": paper, "models": ", ".join(models) or "none yet",
        "experiments run": ", ".join(summaries) or "none yet"})


def reproduce(run: Reproduction, only: Sequence[str] | None = None,
              done: Callable[[str, dict[str, Any]], None] | None = None) -> Path:
    """Run the chosen experiments of ``run.paper`` (all by default), write each summary and figure, then
    results.md; ``done(experiment, summary)`` after each experiment."""
    from .claims import write_summary

    for experiment in check_experiments(run.paper, only):
        summary = PAPERS[run.paper][experiment](run)
        summary["command"] = run.command
        write_summary(run.folder(experiment) / "summary.json", summary)
        if done:
            done(experiment, summary)
    return write_results(run.out, run.paper)


def _write_text(path: Path, text: str) -> None:
    from ..explanation import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(text.encode()))


def _safe(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:60]

"""The MoXI paper's experiments (Fig. 2-9, 13-16, Table 1) as ``clearsight reproduce moxi`` runs them: each takes
the :class:`~.run.Reproduction` and returns its summary (the contract of :mod:`.claims.summary`), having
written its figures to the run's folder for it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import MethodError
from .run import PAPER_SHAPLEY_ROUNDS, Reproduction, runtime_unit, write_text

#: the corruptions of a default run (``--corruptions all`` takes the 12 of clearsight.corruptions)
DEFAULT_CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "fog", "jpeg_compression")
CONSISTENCY_CLASSES = (10, 20, 100, 1000)
CURVES = ("insertion", "deletion")
#: photos whose insertion and deletion curves are computed before the next photos' (see :func:`moxi_curves`)
CURVE_GROUP = 4


def curve_set(results) -> dict[str, Any]:
    """A :class:`~clearsight.evaluation.CurveResults` as the summary's ``CurveSet``."""
    return {"accuracy": {m: results.accuracy(m).tolist() for m in results.methods}, "auc": results.aucs()}


# ---- the experiments -------------------------------------------------------------------------------------------
def moxi_curves(run: Reproduction) -> dict[str, Any]:
    """Fig. 3/8/9: insertion and deletion accuracy curves of every method (full orders).

    The photos go in groups of :data:`CURVE_GROUP`, both curves of a group before the next group: a run
    stopped part-way (hours, over sessions) leaves every curve of its first photos stored, which a smaller
    ``--limit`` turns into a complete result, rather than insertion for all photos and deletion for none."""
    folder, summary = run.folder("curves"), {}
    # the bar's total is every group's units from the start (one per photo, method and curve); each group's
    # evaluation then finds it covered (``expect`` means "at least this many more")
    run.expect(len(run.photos) * len(run.moxi_methods()) * len(CURVES))
    joined: dict[str, Any] = {}
    for first in range(0, max(1, len(run.photos)), CURVE_GROUP):
        for curve in CURVES:
            part = run.curves(curve, first=first, limit=first + CURVE_GROUP)
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
    write_text(folder / "runtime.csv", "\n".join(lines) + "\n")
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
    run.expect(len(top2))
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
    write_text(folder / "consistency.csv", "\n".join(lines) + "\n")
    from ..viz.grids import save_consistency_figure

    figure = save_consistency_figure(summary, folder / "consistency.png", title=f"{run.clf.name}: AUC per class count")
    return {**run.common(len(kept)), **summary, "figures": [str(figure)],
            "deviations": [*run.deviations, "one model with its output restricted to K classes (the target and "
                           "K-1 seeded random others), not models trained on K classes"]}

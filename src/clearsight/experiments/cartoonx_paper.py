"""The CartoonX reproduction's experiments (Fig. 1-6 and its runtimes) as ``clearsight reproduce cartoonx`` runs
them: each takes the :class:`~.run.Reproduction` and returns its summary (the contract of
:mod:`.claims.summary`), having written its figures to the run's folder for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.units import safe_name
from ..errors import MethodError
from .run import Reproduction, check_models, runtime_unit, write_text


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
    summary: dict[str, Any] = {"lambdas": lambdas}
    for quantity in ("distortion", "sparsity"):
        summary[quantity] = {m: {f"{lam:g}": float(v) for lam, v in zip(lambdas, results.summary(m, quantity)[0])}
                             for m in results.methods}
    notes = [f"lambda_k in {{{', '.join(f'{lam:g}' for lam in lambdas)}}} for both methods"
             + (" (the reproduction's code; its text speaks of six values)" if tuple(lambdas) == LAMBDAS else "")
             + "; each mask's distortion from one noise draw, as the reproduction's evaluation does."]
    common = run.common(len(results.images))
    return {**common, **summary, "deviations": common["deviations"] + notes, "figures": [str(written["png"])]}


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
    write_text(folder / "runtime.csv", "method,mean_seconds,images\n" + "".join(
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
    run.expect(len(models) * limit * 2)
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
        figures.append(str(save_qualitative_grid(rows, folder / f"{safe_name(clf.name)}.png", title=clf.name)))
    return {**run.common(limit), "figures": figures}

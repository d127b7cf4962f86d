"""``clearsight evaluate``: insertion/deletion curves (also under corruption and attack), rate-distortion
curves, the lambda sweep and the mask-initialisation comparison over a folder of photos.

Every check that can fail on the user's flags runs before the model is loaded or any explanation is spent;
finished units are kept in ``--out/runs`` so that running the same command again resumes. Which flags a
method takes, and which curves it fits, come from the capabilities its class declares
(:mod:`clearsight.methods.capabilities`), never from lists of names.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import MethodError
from .common import (
    DEFAULT_CURVE_METHODS,
    DEFAULT_RD_METHODS,
    RD_CURVES,
    REPLACEMENT_CURVES,
    check_absence,
    check_device,
    lambdas,
    load_classifier,
    regular_file,
    seed_everything,
    split_names,
    writable_folder,
)
from .progress import unit_bar


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation import read_labels
    from ..evaluation.driver import result_options
    from ..evaluation.rate_distortion import RANDOM_METHODS
    from ..io import list_images
    from ..methods import METHODS, build_explainer
    from ..methods.capabilities import can

    seed_everything(args.seed)
    rate_distortion = args.curve in RD_CURVES
    default = {"lambda-sweep": "cartoonx,pixel-rde", "inits": "cartoonx",
               "scores": "cartoonx,waveletx,shearletx,pixel-rde"}.get(
        args.curve, DEFAULT_RD_METHODS if rate_distortion else DEFAULT_CURVE_METHODS)
    saved = [_saved(value) for value in args.explanations or []]
    if saved and args.curve in ("lambda-sweep", "inits"):
        raise MethodError(f"--curve {args.curve} explains each image itself; --explanations apply to insertion, "
                          "deletion, corruption, adversarial and rd-* curves")
    methods = split_names(default) if args.methods is None and not saved else split_names(args.methods or "")
    if args.methods is not None and not methods:
        raise MethodError(f"--methods {args.methods!r} names no method; give comma-separated names, e.g. {default}")
    twice = sorted({m for m in methods if methods.count(m) > 1})
    if twice:
        raise MethodError(f"--methods names {', '.join(twice)} more than once")
    check_applicable(args, methods)
    check_absence(args.absence)
    apply_defaults(args)
    options = evaluate_options(args, methods)
    if args.curve == "lambda-sweep":  # fail now, not after the first explanations
        from ..experiments.lambda_sweep import check_sweep

        check_sweep(methods, lambdas(args.lambdas), args.draws)
    replacements = _replacements(args) if args.curve in REPLACEMENT_CURVES else []
    if args.curve == "inits":
        from ..experiments.initialisations import check_inits

        if len(methods) != 1:
            raise MethodError(f"--curve inits compares initialisations of one method; got {', '.join(methods)}")
        check_inits(split_names(args.inits), options.get(methods[0], {}))
    for m in methods:  # unknown names and options fail now, not after an hour
        if m in RANDOM_METHODS and not rate_distortion:
            raise MethodError(f"{m} is a rate-distortion baseline; use it with --curve rd-keep or rd-randomize")
        if m not in RANDOM_METHODS:
            build_explainer(m, result_options(options.get(m, {})))
    paths = list_images(args.images)[: args.limit]
    if args.labels:
        regular_file(args.labels, "labels file")
    check_device(args.device)
    writable_folder(Path(args.out) / "runs")  # finished units go there (and RDE checkpoints below it)
    if any(m in METHODS and can(m, "rde") for m in methods):
        writable_folder(Path(args.out) / "runs" / ".checkpoints", "the checkpoint folder")
    clf = load_classifier(args)
    token_only = [m for m in methods if m not in RANDOM_METHODS and can(m, "needs_token_model")]
    if not getattr(clf, "is_token_model", False) and token_only:
        raise MethodError(f"{', '.join(token_only)} needs a Vision Transformer; {clf.name} is not one (drop it from "
                          "--methods)")
    labels = read_labels(args.labels, clf) if args.labels else {}
    images = [clf.prepare(p, size=args.size, resize=args.resize) for p in paths]
    store = Path(args.out) / "runs"
    if args.overwrite and store.exists():
        import shutil

        shutil.rmtree(store)
    evaluated = [*methods, *saved]
    if replacements:
        return _evaluate_replacement(args, clf, images, [labels.get(p.name) for p in paths], [p.name for p in paths],
                                     evaluated, options, store, replacements)
    run = {"lambda-sweep": _evaluate_lambda_sweep, "inits": _evaluate_inits, "scores": _evaluate_scores}.get(
        args.curve, _evaluate_rate_distortion if rate_distortion else _evaluate_insertion_deletion)
    return run(args, clf, images, [labels.get(p.name) for p in paths], [p.name for p in paths], evaluated, options,
               store)


#: ``evaluate`` flags that belong to some curves only, with their defaults (None in the parser, so that a flag
#: given where it does not apply is refused instead of silently ignored)
CURVE_FLAGS: dict[str, tuple[tuple[str, ...], Any]] = {
    "corruptions": (("corruption",), "gaussian_noise,fog"),
    "severity": (("corruption",), 5),
    "epsilon": (("adversarial",), 1.0),
    "pgd_step": (("adversarial",), 0.2),
    "pgd_steps": (("adversarial",), 10),
    "lambdas": (("lambda-sweep",), "4,8,16,32,64"),
    "inits": (("inits",), "ones,random,preoptimize,foreground,foreground+preoptimize"),
    "draws": ((*RD_CURVES, "lambda-sweep"), 1),
}
#: the curves that play the patch game themselves (so --score, --absence, --patch-size always apply)
GAME_CURVES = ("insertion", "deletion", *REPLACEMENT_CURVES)


def _flag(dest: str) -> str:
    return "--" + {"lambda_k": "lambda"}.get(dest, dest).replace("_", "-")


def check_applicable(args: argparse.Namespace, methods: list[str]) -> None:
    """Refuse a flag that no part of this evaluation would use (``--epsilon`` on insertion curves,
    ``--lambda`` or ``--rounds`` when no method takes them): ignoring it would return results the user did not
    ask for, as if it had been applied."""
    import inspect

    from ..methods import METHODS, explainer_class
    from ..methods.capabilities import can

    for dest, (curves, _) in CURVE_FLAGS.items():
        if getattr(args, dest, None) is not None and args.curve not in curves:
            raise MethodError(f"{_flag(dest)} applies to --curve {' / '.join(curves)}, not {args.curve}")
    known = [m for m in methods if m in METHODS]
    classes = [explainer_class(m) for m in known]
    takers: dict[str, list[str]] = {"score": [], "absence": [], "patch_size": [], "rounds": [], "sampling": [],
                                    "steps": [], "lambda_k": []}
    for m, (cls, fixed) in zip(known, classes):
        accepted = inspect.signature(cls.__init__).parameters
        if can(cls, "patch_game"):
            takers["score"].append(m), takers["absence"].append(m), takers["patch_size"].append(m)
            for key in ("rounds", "sampling"):
                if key in accepted and key not in fixed:
                    takers[key].append(m)
        if can(cls, "rde"):
            takers["steps"].append(m), takers["lambda_k"].append(m)
    if args.curve == "lambda-sweep" and args.lambda_k is not None:
        raise MethodError("--curve lambda-sweep sets lambda_k itself: give the values as --lambdas")
    for dest, users in takers.items():
        if getattr(args, dest, None) is None or users:
            continue
        if dest in ("score", "absence", "patch_size") and args.curve in GAME_CURVES:
            continue  # the curves themselves delete or insert patches
        raise MethodError(f"{_flag(dest)} is not taken by any of --methods ({', '.join(methods) or 'none'}) "
                          f"nor by --curve {args.curve}; drop it")


def apply_defaults(args: argparse.Namespace) -> None:
    """Fill in the defaults of the curve-specific flags left out (see :data:`CURVE_FLAGS`)."""
    for dest, (_, default) in CURVE_FLAGS.items():
        if getattr(args, dest, None) is None:
            setattr(args, dest, default)


def _saved(value: str):
    """``--explanations [METHOD=]DIR`` as :class:`~clearsight.evaluation.SavedExplanations`."""
    from ..evaluation import SavedExplanations
    from ..methods import METHODS

    method, sep, folder = value.partition("=")
    if sep and method in METHODS:
        return SavedExplanations(folder, method=method)
    return SavedExplanations(value)


def _replacements(args: argparse.Namespace) -> list:
    """The :class:`~clearsight.parts.Replace` of each set of curves asked for (checked before any work)."""
    from ..evaluation.replacement import adversarial_replacement, corruption_replacement

    if args.curve == "adversarial":
        return [adversarial_replacement(args.epsilon, args.pgd_step, args.pgd_steps)]
    corruptions = split_names(args.corruptions)
    if not corruptions:
        raise MethodError("--corruptions needs at least one corruption name, e.g. gaussian_noise,fog")
    return [corruption_replacement(name, args.severity, args.seed) for name in corruptions]


def _evaluate_replacement(args, clf, images, labels, names, methods, options, store, replacements) -> int:
    from ..evaluation.replacement import (
        evaluate_replacement_curves,
        perturbation_norms_by_order,
        save_perturbation_norms,
    )

    total = len(images) * len(methods) * len(replacements)
    with unit_bar(f"{args.curve} deletion curves", total, unit="run") as progress:
        bar = progress.bar
        for replace in replacements:
            results = evaluate_replacement_curves(
                clf, images, labels, methods, replace, names=names, score=args.score or "log-odds",
                method_options=options, patch_size=args.patch_size,
                progress=progress, store=store)
            written = results.save(args.out)
            bar.write(f"{results.name}: {len(results.images)} images evaluated, {len(results.skipped)} skipped "
                      "(misclassified)")
            for method, value in results.aucs().items():
                bar.write(f"  {method:12s} AUC {value:.4f}  ({results.seconds[method]:.1f} s; lower is better)")
            bar.write(f"curves: {written['accuracy']}  figure: {written['png']}")
            if args.curve == "adversarial" and results.images:
                photos = {n: image for n, image in zip(names, images) if n in set(results.images)}
                norms = save_perturbation_norms(perturbation_norms_by_order(
                    results, replace, clf, photos, args.patch_size), args.out, results.name)
                bar.write(f"perturbation norm per patch along each deletion order: {norms['csv']}")
    return 0


def _evaluate_lambda_sweep(args, clf, images, labels, names, methods, options, store) -> int:
    from ..experiments.lambda_sweep import evaluate_lambda_sweep

    values = lambdas(args.lambdas)
    total = len(images) * len(methods) * len(values)
    with unit_bar("lambda sweep", total, unit="run") as progress:
        results = evaluate_lambda_sweep(
            clf, images, labels, methods, values, names=names, method_options=options, samples=args.draws,
            progress=progress, store=store)
    written = results.save(args.out)
    print(f"{len(results.images)} images evaluated, {len(results.skipped)} skipped (misclassified)")
    for m in results.methods:
        (dist, _), (spars, _) = results.summary(m, "distortion"), results.summary(m, "sparsity")
        for lam, d, sp in zip(results.lambdas, dist, spars):
            print(f"  {m:10s} lambda {lam:5g}: distortion {d:.4f}, sparsity {sp:.4f}")
    print(f"table: {written['csv']}  figure: {written['png']}")
    return 0


def _evaluate_inits(args, clf, images, labels, names, methods, options, store) -> int:
    import numpy as np

    from ..experiments.initialisations import evaluate_initialisations

    inits = split_names(args.inits)
    with unit_bar("initialisations", len(images) * len(inits), unit="run") as progress:
        results = evaluate_initialisations(
            clf, images, labels, methods[0], inits, names=names, options=options.get(methods[0], {}),
            progress=progress, store=store)
    written = results.save(args.out)
    print(f"{len(results.images)} images evaluated, {len(results.skipped)} skipped (misclassified)")
    for v in results.loss:
        print(f"  {v:24s} objective {np.mean(results.objective[v]):.5f}, {np.mean(results.steps[v]):.0f} steps, "
              f"{np.mean(results.seconds[v]):.1f} s per image")
    print(f"table: {written['csv']}  figure: {written['png']}")
    return 0


def _evaluate_scores(args, clf, images, labels, names, methods, options, store) -> int:
    from ..evaluation.scores_curve import evaluate_scores

    with unit_bar("scores", len(images) * len(methods), unit="run") as progress:
        results = evaluate_scores(
            clf, images, labels, methods, names=names, method_options=options,
            representation=getattr(args, "cp_representation", "own"),
            progress=progress, store=store)
    written = results.save(args.out)
    print(f"{len(results.images)} images evaluated, {len(results.skipped)} skipped (misclassified)")
    for method, means in results.means().items():
        print(f"  {method:12s} hallucination {means['hallucination']:.3f}, CP-l1 {means['cp_l1']:.3f}, "
              f"CP-entropy {means['cp_entropy']:.3f}, retained probability {means['retained_probability']:.3f}  "
              f"({results.seconds[method]:.1f} s)")
    print(f"table: {written['csv']}  figure: {written['png']}")
    return 0


def evaluate_options(args: argparse.Namespace, methods: list[str]) -> dict[str, dict[str, Any]]:
    """Per-method constructor options from ``evaluate``'s flags, by what each method's class declares: the
    patch game's (``--score``, ``--absence``, ``--patch-size``) for methods that play it, the schedule's for
    RDE methods (which also keep their optimisation state in ``--out/runs/.checkpoints``, so that even an
    explanation cut off half-way resumes; where the state lives is not a result setting), and of the other
    flags those the method's constructor takes (``--rounds``, ``--sampling``, ``--seed``)."""
    import inspect

    from ..methods import METHODS, explainer_class
    from ..methods.capabilities import can

    game = {"score": args.score, "absence": args.absence, "patch_size": args.patch_size}
    sampling = {"rounds": args.rounds, "sampling": args.sampling, "seed": args.seed}
    rde = {"steps": args.steps, "lambda_k": args.lambda_k, "seed": args.seed, "precision": args.precision}
    options: dict[str, dict[str, Any]] = {}
    for m in methods:
        if m not in METHODS:
            continue  # a rate-distortion baseline: no options
        cls, fixed = explainer_class(m)
        accepted = inspect.signature(cls.__init__).parameters
        chosen: dict[str, Any] = {}
        if can(cls, "patch_game"):
            chosen.update(game)
            chosen.update({k: v for k, v in sampling.items() if k in accepted and k not in fixed})
        if can(cls, "rde"):
            chosen.update(rde)
        options[m] = {k: v for k, v in chosen.items() if v is not None}
        if can(cls, "rde"):
            options[m]["checkpoint_dir"] = str(Path(args.out) / "runs" / ".checkpoints")
    return options


def _evaluate_insertion_deletion(args, clf, images, labels, names, methods, options, store) -> int:
    from ..evaluation import evaluate_curves

    with unit_bar(f"{args.curve} curves", len(images) * len(methods), unit="run") as progress:
        results = evaluate_curves(
            clf, images, labels, methods, args.curve, names=names, absence=args.absence,
            score=args.score or "log-odds", method_options=options, patch_size=args.patch_size,
            progress=progress, store=store)
    written = results.save(args.out)
    print(f"{len(results.images)} images evaluated, {len(results.skipped)} skipped (misclassified)")
    for method, value in results.aucs().items():
        print(f"  {method:12s} AUC {value:.4f}  ({results.seconds[method]:.1f} s)")
    print(f"curves: {written['accuracy']}  figure: {written['png']}")
    return 0


def _evaluate_rate_distortion(args, clf, images, labels, names, methods, options, store) -> int:
    from ..evaluation import evaluate_rate_distortion

    figure = args.curve.removeprefix("rd-")
    with unit_bar(f"{args.curve} curves", len(images) * len(methods), unit="run") as progress:
        results = evaluate_rate_distortion(
            clf, images, labels, methods, figure, names=names, method_options=options, seed=args.seed,
            draws=args.draws, progress=progress, store=store)
    written = results.save(args.out)
    print(f"{len(results.images)} images evaluated, {len(results.skipped)} skipped (misclassified)")
    better = "lower" if figure == "keep" else "higher"
    for method, value in results.areas().items():
        print(f"  {method:14s} area under the mean distortion {value:.4f} ({better} is better)  "
              f"({results.seconds[method]:.1f} s)")
    print(f"curves: {written['mean']}  figure: {written['png']}")
    return 0

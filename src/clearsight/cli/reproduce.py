"""``clearsight reproduce moxi|cartoonx``: every experiment of a paper over a folder of photos, on this machine
or a Ray cluster, and ``OUT/PAPER/results.md`` with each claim of the paper beside our number.

Every flag is checked before the model loads; finished units are kept in ``OUT/units``, so the same command
run again resumes (across sessions too) and, with everything stored, only rewrites figures and tables.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..errors import MethodError
from .common import check_device, model_spec, seed_everything, split_names, writable_folder
from .progress import unit_bar


def make_engine(name: str, address: str | None, workers: int | None):
    """The engine a run asks for: ``local`` (in-process) or ``ray`` (the optional extra)."""
    if name == "local":
        if address:
            raise MethodError("--address names a Ray cluster; use it with --engine ray")
        from ..engine import LocalEngine

        return LocalEngine()
    if name == "ray":
        from ..engine.ray import RayEngine

        engine = RayEngine(address=address, workers=workers)
        engine.check_address()  # before the model loads: a wrong address would otherwise hang in ray.init
        return engine
    raise MethodError(f"unknown engine {name!r}; choose local or ray")


def cmd_reproduce(args: argparse.Namespace) -> int:
    from ..evaluation import read_labels
    from ..evaluation.driver import ModelSpec
    from ..experiments.reproduce import Reproduction, check_experiments, check_models, reproduce, write_results
    from ..io import list_images

    experiments = check_experiments(args.paper, split_names(args.only) if args.only else None)
    if args.limit is not None and args.limit < 1:
        raise MethodError(f"--limit is the number of photos to use (at least 1); got {args.limit}")
    if args.size is not None or args.resize is not None:
        raise MethodError("reproduce explains each photo at the model's own input size (the papers' setting); "
                          "drop --size/--resize")
    if args.shapley_rounds < 1:
        raise MethodError(f"--shapley-rounds must be at least 1; got {args.shapley_rounds}")
    out = Path(args.out)
    writable_folder(out)  # before the model loads: not a traceback after an hour of units
    if args.tables_only:
        path = write_results(out, args.paper)
        print(f"claims table (from the stored summaries): {path}")
        return 0
    check_models(experiments, args.other_model)
    check_device(args.device)
    engine = make_engine(args.engine, args.address, args.workers)
    seed_everything(args.seed)
    paths = list_images(args.images)[: args.limit]
    spec = model_spec(args)
    other = ModelSpec(args.other_model, args.other_weights, args.device, args.precision or "fp32") \
        if args.other_model else None
    run = Reproduction(paper=args.paper, model=spec, images=paths, labels={}, out=out, engine=engine,
                       seed=args.seed, other_model=other, command=shlex.join(["clearsight", *sys.argv[1:]]),
                       options={"shapley_rounds": args.shapley_rounds, "shapley_sampling": args.shapley_sampling,
                                "patch_size": args.patch_size, "steps": args.steps,
                                "corruptions": split_names(args.corruptions) if args.corruptions else None,
                                "heatmap_images": args.heatmap_images, "set_sum_train": args.set_sum_train,
                                "set_sum_epochs": args.set_sum_epochs, "set_sum_test": args.set_sum_test})
    run.clf, run.other_clf  # noqa: B018 -- load both now: a model that cannot load fails before the progress bar
    run.labels = read_labels(args.labels, run.clf) if args.labels else {}
    with engine, unit_bar(f"reproduce {args.paper}") as progress:
        run.progress = progress

        def done(experiment: str, summary: dict) -> None:
            progress.bar.write(f"{experiment}: {summary.get('images', 0)} images; "
                               f"figures: {', '.join(summary.get('figures', [])) or 'none'}")

        results = reproduce(run, experiments, done)
    print(f"claims beside the paper: {results} (also on the page that `clearsight report {shlex.quote(str(out))}` "
          "writes)")
    return 0


def add_reproduce_parser(sub, add_model_args) -> None:
    rp = sub.add_parser("reproduce", help="re-run a paper's experiments over a folder of photos and write each "
                        "claim beside our number (results.md)",
                        description="Re-run the experiments of the MoXI paper or the CartoonX reproduction over a "
                        "folder of photos and write OUT/PAPER/results.md: each claim of the paper, its value, ours, "
                        "and whether it holds on your model. Finished units are kept in OUT/units: the same "
                        "command resumes, locally or on Ray.")
    rp.add_argument("paper", choices=["moxi", "cartoonx"])
    rp.add_argument("--only", help="comma-separated experiments (moxi: curves, heatmaps, class-discriminative, "
                    "corruptions, adversarial, set-sum, consistency, runtime; cartoonx: qualitative, "
                    "rate-distortion, lambda, vit, inits, runtime); default all")
    add_model_args(rp)
    rp.add_argument("--other-model", help="cartoonx vit/qualitative: the second architecture (a CNN when --model "
                    "is a ViT, or the other way round), e.g. efficientnet_lite0")
    rp.add_argument("--other-weights", help="state_dict of --other-model")
    rp.add_argument("--images", required=True, help="folder of photos")
    rp.add_argument("--labels", help="CSV with file and class_index (or label) columns; photos the model "
                    "misclassifies are skipped (default: the prediction is the target)")
    rp.add_argument("--limit", type=int, help="use the first N photos")
    rp.add_argument("--out", default="clearsight-out/reproduce", help="output folder (default %(default)s)")
    rp.add_argument("--engine", default="local", choices=["local", "ray"],
                    help="where units run: this process (default) or a Ray cluster (pip install -e '.[ray]')")
    rp.add_argument("--address", help="Ray cluster address (host:port or ray://...; default: a local Ray)")
    rp.add_argument("--workers", type=int, help="Ray: worker processes when starting a local Ray")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--shapley-rounds", type=int, default=200, help="Shapley sampling rounds (paper: 200)")
    rp.add_argument("--shapley-sampling", default="plain", help="plain (paper) or permutation (half the passes)")
    rp.add_argument("--patch-size", type=int, help="patch side in pixels (default: the ViT's token patch, 16)")
    rp.add_argument("--steps", type=int, help="CartoonX / Pixel RDE optimisation steps (default: the preset's)")
    rp.add_argument("--corruptions", help="moxi corruptions: comma-separated names (default gaussian_noise, "
                    "gaussian_blur, fog, jpeg_compression)")
    rp.add_argument("--heatmap-images", type=int, default=4, help="moxi heatmaps: photos in the grid (default 4)")
    rp.add_argument("--set-sum-train", type=int, default=30000, help=argparse.SUPPRESS)
    rp.add_argument("--set-sum-epochs", type=int, default=10, help=argparse.SUPPRESS)
    rp.add_argument("--set-sum-test", type=int, default=200, help=argparse.SUPPRESS)
    rp.add_argument("--tables-only", action="store_true", help="rewrite results.md from the stored summaries only")
    rp.set_defaults(func=cmd_reproduce)

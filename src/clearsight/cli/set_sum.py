"""``clearsight set-sum``: the MoXI paper's visual SET-SUM experiment."""

from __future__ import annotations

import argparse
from pathlib import Path

from .progress import unit_bar


def cmd_set_sum(args: argparse.Namespace) -> int:
    from ..experiments.set_sum import check_set_sum, reproduce_set_sum

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    check_set_sum(args.train_size, args.epochs, args.test_size, args.rounds, methods)
    with unit_bar("SET-SUM curves", args.test_size * len(methods), unit="run") as progress:
        run = reproduce_set_sum(
            args.out, args.train_size, args.epochs, args.test_size, args.seed, args.rounds, methods,
            train_progress=lambda epoch, loss: progress.bar.write(f"epoch {epoch}/{args.epochs}: loss {loss:.4f}"),
            progress=progress)
    curves = run.curves
    print(f"model {run.model_path}: accuracy {run.accuracy_uniform:.3f} on uniform test grids, "
          f"{run.accuracy_largest_twice:.3f} on grids with the largest digit twice")
    print(f"{len(curves.images)} test grids explained, {len(curves.skipped)} skipped (misclassified)")
    print("insertion accuracy after 0/1/2/3/4 of 4 cells:")
    for m in curves.methods:
        print(f"  {m:12s} " + "  ".join(f"{v:.3f}" for v in curves.accuracy(m)))
    print(f"table: {Path(args.out) / 'set-sum-insertion_accuracy.csv'}  figure: "
          f"{Path(args.out) / 'set-sum-insertion.png'}")
    return 0

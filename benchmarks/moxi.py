"""MoXI, MoXI(-) and Shapley sampling on DeiT-Tiny: seconds, model passes, and the naive way in the same run.

    .venv/bin/python benchmarks/moxi.py                 # defaults below, ~25 min on a quiet 2-core machine
    .venv/bin/python benchmarks/moxi.py --quick         # a smoke run, ~3 min
    .venv/bin/python benchmarks/moxi.py --images 0 --full-images 0 --error-rounds 0   # Shapley timing only

What it measures (all on the same machine, in the same run):
- early-stopping MoXI (the default ``explain``): insertion until the target is predicted, deletion until it is
  not, on ``--images`` photos that DeiT-Tiny classifies correctly: seconds, passes, greedy steps (medians);
- full-order MoXI insertion and deletion (all 196 steps) on ``--full-images`` photos;
- the naive way, as the reference did it but with full-length inputs: all N candidates at every step, each
  a full 197-token sequence with absent patches hidden by attention masking from block 0 (the same logits
  as dropping them). Its steps all cost the same, so ``--naive-steps`` steps are run and the full order is
  extrapolated (x 196 / steps); its picks are checked against ours;
- Shapley sampling: seconds per round (``--shapley-rounds`` rounds, extrapolated to 200), and the error of
  plain, antithetic and stratified sampling on a 7x7 game (32-pixel players, cheap enough for a long run);
- the floor: the same model passes alone (the time spent inside the model calls, gather of the kept tokens
  included, measured inline), so every run reports wall time / model time: the overhead of everything
  that is not the model.

Timings on a shared machine are noisy: other processes compete for the cores. Ratios measured in the same
run are the trustworthy numbers. The reference figures quoted (ViT-Tiny, 2 cores, measured here by the
project) are printed next to ours for comparison.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

from clearsight.methods.moxi import failure_rule, greedy, success_rule  # noqa: E402
from clearsight.methods.shapley import SAMPLINGS, passes_per_round, shapley_rounds  # noqa: E402
from clearsight.models import load_model  # noqa: E402
from clearsight.parts import PatchGame, PatchGrid  # noqa: E402
from clearsight.scores import log_odds  # noqa: E402

REFERENCE = {  # the reference code, ViT-Tiny on 2 cores (from the issue; also in benchmarks/RESULTS.md)
    "insertion_full_s": 506.0, "deletion_full_s": 525.0, "insertion_10_steps_s": 2.0,
    "deletion_step_s": 9.4, "shapley_round_s": 7.7,
}


# ------------------------------------------------------------------------------------------ recording
class Recorder:
    """Wraps a game's bound absence and its ``evaluate``: times every model call (the floor: the same
    model passes alone, measured inline so that load from other processes hits both sides alike) and
    stamps the end of every greedy step."""

    def __init__(self, game: PatchGame) -> None:
        self.model_s = 0.0
        self.stamps: list[float] = []
        bound = game.bound
        logits, evaluate = bound.logits, game.evaluate

        def timed_logits(keep: torch.Tensor) -> torch.Tensor:
            start = time.perf_counter()
            out = logits(keep)
            self.model_s += time.perf_counter() - start
            return out

        def stamped(coalitions):
            out = evaluate(coalitions)
            self.stamps.append(time.perf_counter())
            return out

        bound.logits = timed_logits  # instance attributes: only this game is wrapped
        game.evaluate = stamped


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


# --------------------------------------------------------------------------------------------- naive
def naive_greedy(clf, image: torch.Tensor, target: int, mode: str, steps: int, chunk: int = 16):
    """The naive algorithm: all N candidates at every step (chosen ones too, then masked out), each a
    full-length token sequence with absent patches hidden from attention. Returns picks and step times."""
    n = clf.num_patches
    selected = torch.zeros(n, dtype=torch.bool)
    picks, times = [], []
    eye = torch.eye(n, dtype=torch.bool)
    for _ in range(steps):
        start = time.perf_counter()
        rows = selected[None, :] | eye
        keep = rows if mode == "insertion" else ~rows
        with torch.inference_mode():
            logits = torch.cat([clf.forward_masked(image[None], keep[s:s + chunk], layer=0)
                                for s in range(0, n, chunk)])
        values = log_odds(logits, target)
        values[selected] = float("-inf") if mode == "insertion" else float("inf")
        b = int(values.argmax() if mode == "insertion" else values.argmin())
        selected[b] = True
        picks.append(b)
        times.append(time.perf_counter() - start)
    return picks, times


# ---------------------------------------------------------------------------------------------- runs
def run_moxi(clf, image, target, mode: str, full: bool, cap: int | None = None) -> dict:
    """One MoXI run on a recorded game: seconds, passes, steps, model-only seconds (``cap``: at most that
    many steps; ``stop`` is then None when the run did not stop by itself)."""
    game = PatchGame(clf, image, target)
    rec = Recorder(game)
    rule = success_rule(target) if mode == "insertion" else failure_rule(target)
    before = clf.passes
    start = time.perf_counter()
    result, seconds = timed(lambda: greedy(game, mode, rule, full_order=full, max_steps=cap))
    passes = clf.passes - before
    model = rec.model_s
    steps = len(result.order) if not full else (result.stop or len(result.order))
    first10 = rec.stamps[9] - start if len(rec.stamps) >= 10 else None
    return {"seconds": seconds, "passes": passes, "steps": steps, "model_s": model, "order": result.order,
            "stop": result.stop, "n_steps_run": len(result.order), "first10_s": first10}


def run_shapley(clf, image, target, rounds: int, sampling: str = "plain", seed: int = 0,
                grid: PatchGrid | None = None) -> dict:
    game = PatchGame(clf, image, target, grid=grid)
    rec = Recorder(game)
    before = clf.passes
    values, seconds = timed(lambda: shapley_rounds(game.value, game.num_players, rounds, sampling, seed))
    return {"seconds": seconds, "passes": clf.passes - before, "values": values,
            "model_s": rec.model_s}


def shapley_error_study(clf, image, target, rounds: int, blocks: int) -> dict:
    """Every sampling scheme on the 49-player game (32-px patches): the error an R-round estimate has,
    and the rounds and model passes each scheme needs to match 200 plain rounds.

    Two measurements per scheme: (1) from the rounds themselves, the summed per-player variance of one
    independent unit (a round; a pair of rounds for the antithetic schemes), so that the mean squared error
    of R rounds is that trace over R; (2) against a long run (all rounds of every scheme pooled; every
    scheme is unbiased), the squared error of the mean of each of ``blocks`` seeded blocks."""
    grid = PatchGrid(clf.input_size, clf.input_size, 2 * clf.patch_size)
    n = grid.size
    per = {}
    for sampling in SAMPLINGS:
        runs = [run_shapley(clf, image, target, rounds // blocks, sampling, seed=100 + b, grid=grid)
                for b in range(blocks)]
        per[sampling] = (torch.cat([r["values"] for r in runs]), [r["values"].mean(0) for r in runs],
                         sum(r["seconds"] for r in runs))
    long_run = torch.cat([v for v, _, _ in per.values()]).mean(0)
    plain_trace = float(per["plain"][0].var(0).sum())
    out = {"block_rounds": rounds // blocks, "players": n}
    for sampling, (values, block_means, seconds) in per.items():
        paired = sampling in ("antithetic", "permutation-antithetic")
        units = values[: values.shape[0] // 2 * 2].reshape(-1, 2, n).mean(1) if paired else values
        trace = float(units.var(0).sum()) * (2 if paired else 1)  # per round: a pair counts two rounds
        match = 200 * trace / plain_trace
        out[sampling] = {
            "block_sq_error": statistics.mean(float(((m - long_run) ** 2).sum()) for m in block_means),
            "trace": trace, "rounds_for_plain_200": match,
            "passes_for_plain_200": match * passes_per_round(n, sampling),
            "seconds_per_round": seconds / values.shape[0],
        }
    return out


# ---------------------------------------------------------------------------------------------- main
def photos(clf, count: int) -> list[tuple[str, torch.Tensor, int]]:
    """The first ``count`` sample photos that the model classifies correctly."""
    folder = SHARED / "data" / "imagenet-samples"
    with open(folder / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        image = clf.prepare(folder / row["file"])
        if int(clf.logits(image[None]).argmax()) == int(row["class_index"]):
            out.append((row["file"], image, int(row["class_index"])))
        if len(out) == count:
            break
    return out


def line(label: str, ours: float, other: float | None = None, unit: str = "s", other_label: str = "") -> str:
    tail = f"   {other_label} {other:.2f} {unit} -> {other / ours:.1f}x" if other else ""
    return f"  {label:44s} {ours:9.2f} {unit}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=10, help="photos for the early-stopping runs (default 10)")
    p.add_argument("--full-images", type=int, default=1, help="photos for the full-order runs (default 1)")
    p.add_argument("--deletion-cap", type=int, default=10,
                   help="early-stopping deletion runs stop after this many steps at most (default 10)")
    p.add_argument("--insertion-cap", type=int, default=60,
                   help="early-stopping insertion runs stop after this many steps at most (default 60)")
    p.add_argument("--naive-steps", type=int, default=1, help="naive steps run per mode (extrapolated)")
    p.add_argument("--shapley-rounds", type=int, default=10, help="rounds timed (extrapolated to 200)")
    p.add_argument("--permutation-rounds", type=int, default=32,
                   help="permutation-sampling rounds timed on the full game (0: skip)")
    p.add_argument("--error-rounds", type=int, default=96, help="rounds per scheme for the error study")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default 0: torch's own choice, every core; on a machine shared with other "
                   "busy processes 1 thread can be faster)")
    p.add_argument("--quick", action="store_true", help="2 photos, no full order, tiny error study")
    args = p.parse_args(argv)
    if args.quick:
        (args.images, args.full_images, args.naive_steps, args.shapley_rounds, args.permutation_rounds,
         args.error_rounds) = 2, 0, 1, 2, 4, 18
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    clf = load_model("timm:deit_tiny_patch16_224", weights=SHARED / "models" / "deit_tiny_patch16_224.pth")
    pics = photos(clf, max(args.images, args.full_images, 1))
    print(f"DeiT-Tiny, {len(pics)} correctly classified photos, torch threads {args.threads}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
    sys.stdout.flush()

    # -- early stopping ------------------------------------------------------------------------------
    early = {"insertion": [], "deletion": []}
    for name, image, label in pics[: args.images]:
        for mode in early:
            cap = args.deletion_cap if mode == "deletion" else args.insertion_cap
            r = run_moxi(clf, image, label, mode, full=False, cap=cap)
            early[mode].append(r)
            print(f"  {name:40s} {mode:9s} steps {r['steps']:3d}  {r['seconds']:7.2f} s  {r['passes']:6d} passes"
                  f"  model alone {r['model_s']:.2f} s")
            sys.stdout.flush()
    if args.images:
        print("\nMoXI, stopping at the first success / failure (medians over photos)")
    for mode, runs in early.items() if args.images else ():
        def med(key: str, runs=runs) -> float:
            return statistics.median(r[key] for r in runs)

        capped = sum(r["stop"] is None for r in runs)
        if capped:
            cap = args.deletion_cap if mode == "deletion" else args.insertion_cap
            print(f"  {mode}: {capped} of {len(runs)} photos had not stopped by themselves after the cap of {cap} "
                  f"steps (counted as {cap}: the median steps is a lower bound if that is half or more)")
        per_step = statistics.median(r["seconds"] / max(1, r["steps"]) for r in runs)
        overhead = sum(r["seconds"] for r in runs) / max(1e-9, sum(r["model_s"] for r in runs))
        print(f"  {mode:9s} median steps {med('steps'):.0f} (paper: {6 if mode == 'insertion' else 10}), "
              f"median {med('seconds'):.2f} s, {med('passes'):.0f} passes, {per_step:.2f} s/step; "
              f"wall/model {overhead:.2f}x")
    if args.images:
        print(f"  targets: insertion median <= 0.5 s; deletion <= 4 s per step (reference "
              f"{REFERENCE['deletion_step_s']} s/step)")
    refs = {"insertion": REFERENCE["insertion_10_steps_s"], "deletion": 10 * REFERENCE["deletion_step_s"]}
    for mode, ref in refs.items():
        firsts = [r["first10_s"] for r in early[mode] if r["first10_s"] is not None]
        if firsts:
            print(line(f"{mode}: first 10 steps (median, {len(firsts)} photos)", statistics.median(firsts), ref,
                       other_label="reference"))

    # -- Shapley -------------------------------------------------------------------------------------
    if pics and args.shapley_rounds:
        name, image, label = pics[0]
        # a plain round's cost depends only on its size: timing stratified sizes (one per slice of the size
        # range) gives a plain round's expected cost from a few rounds, where random sizes would be noisy
        r = run_shapley(clf, image, label, args.shapley_rounds, "stratified")
        per_round = r["seconds"] / args.shapley_rounds
        print(f"\nShapley sampling on {name}: {args.shapley_rounds} rounds (sizes stratified: the expected cost "
              f"of a plain round), {r['passes']} passes")
        print(line("seconds per round", per_round, REFERENCE["shapley_round_s"], other_label="reference"))
        print(f"  200 rounds extrapolated: {per_round * 200:.0f} s (reference ~1540 s); wall/model "
              f"{r['seconds'] / r['model_s']:.2f}x")
        if args.permutation_rounds:
            q = run_shapley(clf, image, label, args.permutation_rounds, "permutation")
            per_perm = q["seconds"] / args.permutation_rounds
            print(f"  permutation sampling: {args.permutation_rounds} rounds, {q['passes']} passes")
            print(line("  seconds per round (same error per round)", per_perm, REFERENCE["shapley_round_s"],
                       other_label="reference"))
            print(f"    vs plain in this run: x{per_round / per_perm:.2f} faster per round; wall/model "
                  f"{q['seconds'] / q['model_s']:.2f}x")
        if args.error_rounds:
            blocks = 6
            study = shapley_error_study(clf, image, label, args.error_rounds, blocks)
            print(f"\nShapley error, {study['players']}-player game (32-px patches), {args.error_rounds} rounds per "
                  f"scheme in {blocks} seeded blocks; long run = all {len(SAMPLINGS) * args.error_rounds} rounds "
                  "pooled. To match 200 plain rounds' error (from per-round variances):")
            plain_passes = study["plain"]["passes_for_plain_200"]
            for s in SAMPLINGS:
                st = study[s]
                print(f"  {s:23s} {st['rounds_for_plain_200']:5.0f} rounds, {st['passes_for_plain_200']:7.0f} passes "
                      f"(x{plain_passes / st['passes_for_plain_200']:.2f} fewer than plain), "
                      f"{st['seconds_per_round']:.2f} s/round; {study['block_rounds']}-round block vs long run: "
                      f"squared error {st['block_sq_error']:.4f}")
    # -- full order + naive ----------------------------------------------------------------------------
    for name, image, label in pics[: args.full_images]:
        print(f"\nFull order (196 steps) on {name}")
        for mode in ("insertion", "deletion"):
            r = run_moxi(clf, image, label, mode, full=True)
            picks, times = naive_greedy(clf, image, label, mode, args.naive_steps)
            naive_full = statistics.mean(times) * clf.num_patches
            same = picks == r["order"][: len(picks)].tolist()
            print(line(f"{mode}: ours, {r['passes']} passes", r["seconds"], naive_full, other_label="naive (extrap.)"))
            if r["first10_s"] is not None:
                print(f"  {mode}: first 10 steps {r['first10_s']:.2f} s")
            print(line(f"{mode}: reference (ViT-Tiny, 2 cores)", r["seconds"], REFERENCE[f"{mode}_full_s"],
                       other_label="reference"))
            print(f"  {mode}: naive {statistics.mean(times):.2f} s/step x 196 steps, {clf.num_patches} passes/step of "
                  f"197 tokens; first {len(picks)} naive picks equal ours: {same}; "
                  f"wall/model {r['seconds'] / r['model_s']:.2f}x")
            sys.stdout.flush()

    return 0


if __name__ == "__main__":
    sys.exit(main())

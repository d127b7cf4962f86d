"""How close a MoXI greedy step on DeiT-Tiny runs to this CPU's own matrix-multiply rate, and what batching
several photos' steps together buys (issue 17 item 2, issue 15 item 2).

    .venv/bin/python benchmarks/moxi_ceiling.py              # ~3 min on a quiet 2-core machine
    .venv/bin/python benchmarks/moxi_ceiling.py --photos 4 --busy   # with a competing busy loop beside it

What it measures, in one run:
- the ceiling: ``torch.mm`` of the shapes a deletion step's linear layers have (rows = candidates x tokens,
  DeiT-Tiny's 192 -> 576 / 192 / 768 -> 192), in GFLOP/s: the best this machine's BLAS does;
- one full deletion step (196 candidates of 195 tokens): wall seconds, the linear layers' share of it (a
  profiler run) and their GFLOP/s, against that ceiling; plus the step's whole-model rate. When the linear
  layers already run near the ceiling, no fp32 rewrite of the step can be much faster: only fewer FLOPs
  (a lower precision with native support, a GPU) can;
- the first insertion and deletion step scored in bf16 against fp32, and the share of candidates that a
  bf16 screening (``MoXI(screen="bf16")``) re-scores in fp32 with its calibrated bound: the best speed-up
  screening could give here (bf16 is emulated, and slower, on CPUs without AVX512-BF16/AMX);
- early-stopping MoXI insertion of ``--photos`` photos one by one against one batched ``explain`` (their
  greedy steps share model passes): seconds and the ratio, orders checked equal.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

from clearsight.methods.moxi import MoXI  # noqa: E402
from clearsight.models import load_model  # noqa: E402
from clearsight.models.token import cpu_has_bf16  # noqa: E402
from clearsight.parts import PatchGame  # noqa: E402

#: DeiT-Tiny's linear layers per block: (in, out) of qkv, proj, fc1, fc2
LINEARS = ((192, 576), (192, 192), (192, 768), (768, 192))


def busy_loop() -> None:  # pragma: no cover - runs in a child process
    while True:
        pass


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gemm_ceiling(rows: int, repeats: int) -> float:
    """GFLOP/s of the step's linear-layer shapes as bare matrix products (the BLAS's best here)."""
    mats = [(torch.randn(rows, k), torch.randn(k, n)) for k, n in LINEARS]
    flops = sum(2 * rows * k * n for k, n in LINEARS)
    with torch.inference_mode():
        for a, b in mats:
            a @ b
        seconds = best_of(lambda: [a @ b for a, b in mats], repeats)
    return flops / seconds / 1e9


def deletion_step(clf, image: torch.Tensor, target: int, repeats: int) -> dict[str, float]:
    """One first deletion step (every patch's leave-one-out coalition), timed and profiled."""
    game = PatchGame(clf, image, target)
    n = game.num_players
    rows = ~torch.eye(n, dtype=torch.bool)
    game.value(rows[:8])  # warm up
    seconds = best_of(lambda: game.value(rows), repeats)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        game.value(rows)
    ops = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
    total = sum(ops.values())
    linear = ops.get("aten::addmm", 0.0) + ops.get("aten::mm", 0.0)
    tokens = n * (n - 1 + clf.num_prefix_tokens)
    # all blocks but the last run every token; the last runs its attention output and MLP for CLS only
    depth = len(clf.adapter.blocks())
    per_token = 2 * sum(k * m for k, m in LINEARS)
    linear_flops = tokens * per_token * (depth - 1) + tokens * 2 * 192 * 576 + n * 2 * (192 * 192 + 2 * 192 * 768)
    return {"seconds": seconds, "linear_share": linear / total if total else float("nan"),
            "linear_gflops": linear_flops / (seconds * linear / total) / 1e9 if linear else float("nan"),
            "tokens": float(tokens)}


def screening_first_steps(clf, image: torch.Tensor, target: int, repeats: int) -> dict[str, dict[str, float]]:
    """The first insertion and deletion step scored in bf16 against fp32: seconds of each and the share of
    candidates a :class:`~clearsight.methods.greedy.Screening` with the calibrated bound re-scores in fp32."""
    from clearsight.methods.greedy import calibrate_bound, coalition_after
    from clearsight.parts import TokenDrop

    out = {}
    for mode in ("insertion", "deletion"):
        game = PatchGame(clf, image, target)
        cheap = PatchGame(clf, image, target, absence=TokenDrop(precision="bf16"))
        rows = coalition_after(torch.eye(game.num_players, dtype=torch.bool), mode)
        fp32 = best_of(lambda g=game, r=rows: g.value(r), repeats)
        bf16 = best_of(lambda g=cheap, r=rows: g.value(r), repeats)
        bound = calibrate_bound(game, cheap, mode)  # type: ignore[arg-type]
        values = cheap.value(rows)
        near = values >= values.max() - bound if mode == "insertion" else values <= values.min() + bound
        out[mode] = {"fp32_s": fp32, "bf16_s": bf16, "bound": bound, "rescored": float(near.float().mean())}
    return out


def batch_vs_alone(clf, photos: list[tuple[torch.Tensor, int]], repeats: int) -> dict[str, float]:
    explainer = MoXI(mode="insertion")
    images = [p for p, _ in photos]
    targets = [t for _, t in photos]
    alone_orders: list = []
    batch_orders: list = []

    def alone():
        alone_orders[:] = [explainer.explain(clf, i, t).order.tolist() for i, t in photos]

    def together():
        batch_orders[:] = [e.order.tolist() for e in explainer.explain(clf, images, targets)]

    t_alone = best_of(alone, repeats)
    t_batch = best_of(together, repeats)
    return {"alone_s": t_alone, "batch_s": t_batch, "equal": float(alone_orders == batch_orders),
            "steps": statistics.median(len(o) for o in alone_orders)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=4, help="photos for the batch comparison (default 4)")
    p.add_argument("--repeats", type=int, default=2, help="best of this many timings (default 2)")
    p.add_argument("--busy", action="store_true", help="run a CPU-bound busy loop beside the benchmark")
    args = p.parse_args(argv)
    clf = load_model("timm:deit_tiny_patch16_224", weights=SHARED / "models" / "deit_tiny_patch16_224.pth")
    import csv

    rows = list(csv.DictReader(open(SHARED / "data" / "imagenet-samples" / "labels.csv")))
    photos = []
    for r in rows:
        image = clf.prepare(SHARED / "data" / "imagenet-samples" / r["file"])
        if int(clf.logits(image[None])[0].argmax()) == int(r["class_index"]):
            photos.append((image, int(r["class_index"])))
        if len(photos) == max(1, args.photos):
            break
    busy = multiprocessing.Process(target=busy_loop, daemon=True) if args.busy else None
    if busy:
        busy.start()
    try:
        print(f"threads: {torch.get_num_threads()}; busy loop beside: {'yes' if busy else 'no'}")
        step = deletion_step(clf, *photos[0], args.repeats)
        ceiling = gemm_ceiling(int(step["tokens"]) // 8, args.repeats)  # a chunk's rows, about
        print(f"GEMM ceiling (bare matrix products of the step's shapes): {ceiling:.1f} GFLOP/s")
        print(f"first deletion step: {step['seconds']:.2f} s; linear layers {step['linear_share']:.0%} of it at "
              f"{step['linear_gflops']:.1f} GFLOP/s = {step['linear_gflops'] / ceiling:.0%} of the ceiling")
        native = "native" if cpu_has_bf16() else "emulated: no AVX512-BF16/AMX here"
        for mode, r in screening_first_steps(clf, *photos[0], args.repeats).items():
            print(f"bf16 screening, first {mode} step: fp32 {r['fp32_s']:.2f} s, bf16 {r['bf16_s']:.2f} s ({native}); "
                  f"bound {r['bound']:.3f}, {r['rescored']:.0%} of the candidates re-scored in fp32 -> at best "
                  f"x{1 / (r['bf16_s'] / r['fp32_s'] + r['rescored']):.2f} here")
        result = batch_vs_alone(clf, photos, args.repeats)
        print(f"MoXI insertion to success, {len(photos)} photos (median {result['steps']:.0f} steps): one by one "
              f"{result['alone_s']:.2f} s, one batch {result['batch_s']:.2f} s "
              f"(x{result['alone_s'] / result['batch_s']:.2f}); orders equal: {bool(result['equal'])}")
    finally:
        if busy:
            busy.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())

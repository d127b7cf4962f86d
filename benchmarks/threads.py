"""Threads on a busy machine: wall time of a fixed DeiT-Tiny workload with 1 thread, every core, clearsight's
``auto`` choice, and every core with OpenMP told not to spin (OMP_WAIT_POLICY=passive), each on a quiet machine
and with one other CPU-bound process (a plain Python busy loop) beside it. Each configuration runs in its own
process (OpenMP reads its environment once, at start).

The workload is what MoXI and CartoonX spend their time on: forward passes of a batch of 32 images
(inference), and forward + backward of a batch of 5 (an RDE step).

    python benchmarks/threads.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(os.environ.get("CLEARSIGHT_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
CONFIGS = [("1 thread", "1", {}), ("all cores", "all", {}), ("auto", "auto", {}),
           ("all cores, passive OpenMP", "all", {"OMP_WAIT_POLICY": "PASSIVE"})]


def worker(threads: str, repeats: int) -> dict[str, float]:
    import torch

    from clearsight import load_model
    from clearsight.threads import choose_threads, usable_cores

    clf = load_model("timm:deit_tiny_patch16_224", weights=SHARED / "models" / "deit_tiny_patch16_224.pth")
    photo = clf.prepare(SHARED / "data" / "imagenet-samples" / "n01440764_tench.JPEG")
    chosen = usable_cores() if threads == "all" else choose_threads(threads)
    torch.set_num_threads(chosen)
    batch = photo[None].repeat(32, 1, 1, 1)
    small = photo[None].repeat(5, 1, 1, 1)
    clf.logits(batch)  # warm-up
    times = {"inference": [], "rde_step": []}
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(3):
            clf.logits(batch)
        times["inference"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(3):
            x = small.clone().requires_grad_(True)
            clf(x)[:, 0].sum().backward()
        times["rde_step"].append(time.perf_counter() - start)
    return {"threads": chosen, **{k: min(v) for k, v in times.items()}}


def run_config(threads: str, env: dict[str, str], repeats: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--worker", threads, "--repeats", str(repeats)],
                         env={**os.environ, **env}, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeats)))
        return
    print(f"{os.cpu_count()} cores; workload: 3 x DeiT-Tiny inference of 32 images, 3 x fwd+bwd of 5 (best of "
          f"{args.repeats})")
    results = {}
    for machine in ("quiet", "busy"):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if machine == "busy" else None
        try:
            time.sleep(0.5 if hog else 0)
            for label, threads, env in CONFIGS:
                r = run_config(threads, env, args.repeats)
                results[(machine, label)] = r
                print(f"{machine:5s}  {label:27s} threads {r['threads']}  inference {r['inference']:.2f} s  "
                      f"RDE steps {r['rde_step']:.2f} s", flush=True)
        finally:
            if hog:
                hog.kill()
    for machine in ("quiet", "busy"):
        one = results[(machine, "1 thread")]
        for label, _, _ in CONFIGS[1:]:
            r = results[(machine, label)]
            print(f"{machine:5s}  {label:27s} vs 1 thread: inference x{one['inference'] / r['inference']:.2f}, "
                  f"RDE x{one['rde_step'] / r['rde_step']:.2f} (above 1 = faster)")


if __name__ == "__main__":
    main()

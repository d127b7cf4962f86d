"""Units per hour on the local engine against Ray with single-thread workers on this machine, on the same units
(Grad-CAM and rollout of DeiT-Tiny on real photos), and what Ray costs per unit on top (a no-op Work: the slope
of seconds over units, so that starting the workers does not count).

Every engine's run includes its workers' ``setup`` (loading the model), as a real run does; Ray itself is
started once, before the clock, and its start is reported on its own line. The maps of the two engines are
compared as well, so a speed-up is never bought with another result.

    .venv/bin/python benchmarks/engine.py [--images 8] [--workers 2] [--noop 20,220]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import clearsight

# the benchmark's local Ray talks over loopback only (Ray's Windows/macOS mode; read when Ray is imported)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
from clearsight.engine import LocalEngine, RayEngine, Unit, UnitStore

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLES = SHARED / "data" / "imagenet-samples"
DEIT = ("timm:deit_tiny_patch16_224", str(SHARED / "models" / "deit_tiny_patch16_224.pth"))


class Explain:
    """DeiT-Tiny loaded once per worker; one unit = one method's saliency map on one photo."""

    def setup(self):
        return clearsight.load_model(DEIT[0], weights=DEIT[1])

    def compute(self, clf, unit):
        from clearsight.methods import build_explainer

        image = clf.prepare(SAMPLES / unit.image)
        return {"saliency": np.asarray(build_explainer(unit.method, {}).explain(clf, image).saliency)}


class Nothing:
    """A unit that costs nothing: what remains is the engine's own cost."""

    def setup(self):
        return None

    def compute(self, context, unit):
        return {"x": np.zeros(1)}


def photos(n: int) -> list[str]:
    with open(SAMPLES / "labels.csv") as f:
        return [row["file"] for row in list(csv.DictReader(f))[:n]]


def timed(engine, work, units) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        results = engine.run(work, units, UnitStore(folder))
        return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--local-threads", default="1,default",
                        help="torch threads of the local runs (the first is the reference)")
    parser.add_argument("--noop", default="20,220", help="two counts of no-op units; the slope is the overhead")
    args = parser.parse_args()
    import ray

    units = [Unit.make("saliency", photo, method, {"model": DEIT[0]}) for photo in photos(args.images)
             for method in ("gradcam", "rollout")]
    print(f"ray {ray.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; {len(units)} units (gradcam + rollout, DeiT-Tiny, "
          f"{args.images} photos)")

    before = torch.get_num_threads()
    rows, local = [], None
    for threads in dict.fromkeys(before if t == "default" else int(t) for t in args.local_threads.split(",")):
        torch.set_num_threads(threads)
        seconds, results = timed(LocalEngine(), Explain(), units)
        local = local or results  # Ray's workers run one thread: compare with the one-thread run
        rows.append((f"local, 1 process x {threads} thread(s)", seconds))
    torch.set_num_threads(before)

    start = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    print(f"starting Ray ({args.workers} CPUs): {time.perf_counter() - start:.1f} s (not counted below)")
    try:
        engine = RayEngine(workers=args.workers, threads_per_worker=1)
        seconds, remote = timed(engine, Explain(), units)
        rows.append((f"ray, {args.workers} workers x 1 thread", seconds))
        worst = max(float(np.abs(remote[u]["saliency"] - local[u]["saliency"]).max()) for u in units)

        counts = [int(n) for n in args.noop.split(",")]
        noop = {}
        for name, eng in (("local", LocalEngine()), ("ray", engine)):
            for n in counts:
                noop[name, n] = timed(eng, Nothing(), [Unit.make("noop", f"u{i}", "none") for i in range(n)])[0]
    finally:
        ray.shutdown()

    print(f"{'engine':34s} {'seconds':>8s} {'units/hour':>11s} {'vs local 1 thread':>18s}")
    for name, seconds in rows:
        print(f"{name:34s} {seconds:8.1f} {len(units) * 3600 / seconds:11.0f} {rows[0][1] / seconds:17.2f}x")
    print(f"largest difference between Ray's and the local (1 thread) maps: {worst:.3g}")
    small, large = counts
    fixed = {}
    for name in ("local", "ray"):
        slope = (noop[name, large] - noop[name, small]) / (large - small)
        fixed[name] = noop[name, small] - small * slope
        print(f"no-op units, {name:5s}: {noop[name, small]:.2f} s for {small}, {noop[name, large]:.2f} s for {large}: "
              f"{slope * 1000:.2f} ms per unit, {fixed[name]:.2f} s fixed (starting the workers)")
    overhead = ((noop["ray", large] - noop["ray", small]) - (noop["local", large] - noop["local", small])) / (
        large - small)
    print(f"Ray's overhead per unit: {overhead * 1000:.2f} ms; Ray's run less its workers' start: "
          f"{rows[-1][1] - fixed['ray']:.1f} s")

if __name__ == "__main__":
    main()

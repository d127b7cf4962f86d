"""CartoonX of several photos at once: one by one against ``explain`` of a list, on the same photos in one run.

``explain(model, [photos], "cartoonx")`` optimises the photos' masks in lockstep
(:func:`clearsight.methods.rde.optimize_masks_together`). How many photos share a model pass is the
explainer's ``photos_per_pass``: one on a CPU (the default; bit for bit the photos' own runs), all of them on
a GPU. This benchmark times three ways on the same photos and steps:

* ``alone``: each photo's own ``explain`` (the baseline);
* ``together, 1 per pass``: the default on a CPU;
* ``together, all per pass``: the default on a GPU (forced here on a CPU, to see what it would give).

It prints seconds per photo, the ratio to ``alone``, and the largest mask difference to ``alone`` (0 means bit
for bit). Only the first ``--steps`` steps run (the timing of a step does not depend on how many follow).

    .venv/bin/python benchmarks/rde_batch.py [--model deit|mobilenet] [--photos 4] [--steps 20] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import clearsight
from clearsight.methods.cartoonx import CartoonX
from clearsight.methods.rde import resolve_precision

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLES = SHARED / "data" / "imagenet-samples"
MODELS = {
    "deit": ("timm:deit_tiny_patch16_224", SHARED / "models" / "deit_tiny_patch16_224.pth"),
    "mobilenet": ("torchvision:mobilenet_v2", SHARED / "models" / "mobilenet_v2.pth"),
}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def largest_difference(a: list, b: list) -> float:
    return max(float(abs(x.mask[k] - y.mask[k]).max()) for x, y in zip(a, b) for k in x.mask)


def mean_difference(a: list, b: list) -> float:
    diffs = [abs(x.mask[k] - y.mask[k]) for x, y in zip(a, b) for k in x.mask]
    return float(sum(d.sum() for d in diffs) / sum(d.size for d in diffs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=list(MODELS), default="deit")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    spec, weights = MODELS[args.model]
    clf = clearsight.load_model(spec, weights=str(weights), device=args.device)
    files = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:args.photos]
    images = [clf.prepare(p) for p in files]
    explainer = CartoonX(steps=args.steps, seed=0)
    schedule = explainer.schedule(clf)
    precision = resolve_precision(schedule.precision, clf)
    print(f"CartoonX, {clf.name} on {args.device} ({torch.get_num_threads()} threads), {len(images)} photos, "
          f"{args.steps} steps of {schedule.samples} noise samples, precision {precision}")
    explainer.explain(clf, images[0])  # warm-up: first passes allocate

    alone, t_alone = timed(lambda: [explainer.explain(clf, image) for image in images])
    rows = [("alone", t_alone, 0.0, 0.0)]
    for label, per_pass in (("together, 1 per pass", lambda clf, count: 1),
                            ("together, all per pass", lambda clf, count: count)):
        explainer.photos_per_pass = per_pass  # type: ignore[method-assign]
        shared, seconds = timed(lambda: explainer.explain(clf, images))
        rows.append((label, seconds, largest_difference(shared, alone), mean_difference(shared, alone)))
    print(f"{'how':<26}{'s/photo':>9}{'x alone':>9}{'max |mask - alone|':>20}{'mean':>10}")
    for label, seconds, diff, mean in rows:
        print(f"{label:<26}{seconds / len(images):>9.2f}{t_alone / seconds:>9.2f}{diff:>20.2e}{mean:>10.1e}")


if __name__ == "__main__":
    main()

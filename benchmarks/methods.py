"""Seconds and model passes per image for Grad-CAM, Grad-CAM++ and rollout on the three real models,
fp32 against bf16 autocast, with the agreement of the two maps (Pearson r) so a speed-up is never bought
with a different explanation unnoticed. (The CAM methods run in fp32 whatever the classifier's precision,
so their two columns measure the same computation; why: benchmarks/RESULTS.md.)

    .venv/bin/python benchmarks/methods.py [--images 5] [--models efficientnet_lite0,deit,mobilenet_v2]
"""

from __future__ import annotations

import argparse
import csv
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from clearsight.methods import build_explainer
from clearsight.models import load_model, wrap_model

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLES = SHARED / "data" / "imagenet-samples"
MODELS = {
    "efficientnet_lite0": ("efficientnet_lite0", None),
    "deit": ("timm:deit_tiny_patch16_224", SHARED / "models" / "deit_tiny_patch16_224.pth"),
    "mobilenet_v2": ("torchvision:mobilenet_v2", SHARED / "models" / "mobilenet_v2.pth"),
}
METHODS = [
    ("gradcam", {}),
    ("gradcampp", {}),
    ("gradcam+smooth", {"eigen_smooth": True, "aug_smooth": True}),
    ("rollout", {}),
]


def photos(n: int) -> list[Path]:
    with open(SAMPLES / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    return [SAMPLES / r["file"] for r in rows[: n]]


def run(clf, method: str, options: dict, images: list[torch.Tensor]) -> tuple[float, float, list[np.ndarray]]:
    name = method.split("+")[0]
    explainer = build_explainer(name, options)
    explainer.explain(clf, images[0])  # warm-up (allocations, lazy layer search)
    seconds, maps = [], []
    before = clf.passes
    for image in images:
        start = time.perf_counter()
        maps.append(explainer.explain(clf, image).saliency)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), (clf.passes - before) / len(images), maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} photos per cell")
    header = f"{'model':20s} {'method':16s} {'fp32 s/img':>10s} {'bf16 s/img':>10s} {'speed-up':>8s} " \
             f"{'passes/img':>10s} {'r(fp32,bf16)':>12s}"
    print(header)
    print("-" * len(header))
    for key in args.models.split(","):
        spec, weights = MODELS[key]
        fp32 = load_model(spec, weights=weights)
        bf16 = wrap_model(fp32.model, fp32.preprocessing, name=spec, precision="bf16")
        images = [fp32.prepare(p) for p in photos(args.images)]
        for method, options in METHODS:
            if method == "rollout" and not fp32.is_token_model:
                continue
            t32, passes, maps32 = run(fp32, method, options, images)
            t16, _, maps16 = run(bf16, method, options, images)
            r = np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(maps32, maps16)])
            print(f"{key:20s} {method:16s} {t32:10.3f} {t16:10.3f} {t32 / t16:7.2f}x {passes:10.0f} {r:12.3f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of the process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()

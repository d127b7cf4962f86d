"""Rate-distortion curves (SPEC B.1): seconds per 101-point curve, batched against one image per forward pass.

The reference evaluates each of the 101 points with its own forward pass; clearsight stacks ``BATCH`` points
into one. Both give the same curve (checked here, to float rounding); the ratio is measured in the same run
(figures: benchmarks/RESULTS.md).

Usage::

    python benchmarks/rate_distortion.py                 # DeiT-Tiny and EfficientNet-Lite0, one photo
    python benchmarks/rate_distortion.py --models deit --threads 2
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

import clearsight.evaluation.rate_distortion as rd
from clearsight.models import load_model
from clearsight.parts.representations import WaveletRepresentation

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "imagenet-samples"
MODELS = {
    "deit": ("timm:deit_tiny_patch16_224", ROOT.parent / "shared" / "models" / "deit_tiny_patch16_224.pth", 224),
    "effnet": ("efficientnet_lite0", None, 256),
}
PHOTO = "n01440764_tench.JPEG"


def timed_curve(clf, image, order, batch: int) -> tuple[np.ndarray, float, int]:
    """(curve, seconds, images through the model) with ``batch`` points per forward pass."""
    saved = rd.BATCH
    rd.BATCH = batch
    try:
        before = clf.passes
        t0 = time.perf_counter()
        curve = rd.distortion_curve(clf, image, WaveletRepresentation(), order, "keep")
        return curve, time.perf_counter() - t0, clf.passes - before
    finally:
        rd.BATCH = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()}  one 101-point rd-keep curve, random-wavelet order")
    for key in args.models:
        spec, weights, size = MODELS[key]
        clf = load_model(spec, weights=weights)
        image = clf.prepare(SAMPLES / PHOTO, size=size, resize="squash")
        total = sum(math.prod(b.shape[1:]) for b in WaveletRepresentation().analyze(image))
        order = rd.random_order(total, 0)
        timed_curve(clf, image, order, rd.BATCH)  # warm-up
        naive, naive_s, naive_passes = timed_curve(clf, image, order, 1)
        fast, fast_s, fast_passes = timed_curve(clf, image, order, rd.BATCH)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{key:7} one point per pass: {naive_s:6.2f} s ({naive_passes} images); {rd.BATCH} per pass: "
              f"{fast_s:6.2f} s ({fast_passes} images): x{naive_s / fast_s:.2f} faster; "
              f"max |difference| {np.abs(naive - fast).max():.1e}; peak RSS {peak:.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""clearsight's corruptions against the ``imagecorruptions`` package the MoXI paper used: same pixels, time.

The package (1.1.2) does not import on current NumPy / scikit-image / setuptools, so this script loads its
source from a folder (``--reference``, e.g. an unpacked wheel: ``pip download --no-deps imagecorruptions``
then unzip) with three shims: ``pkg_resources.resource_filename``, ``np.float_`` and scikit-image's removed
``multichannel`` argument. Both sides are seeded alike (the package draws from NumPy's global state), so the
noise corruptions and fog must agree pixel for pixel; impulse noise draws inside scikit-image and can only
agree in distribution. Without ``--reference`` it times clearsight's side alone.

    .venv/bin/python benchmarks/corruptions.py --reference /tmp/icdl
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLEARSIGHT_SHARED", ROOT.parent / "shared"))
PHOTO = SHARED / "data" / "imagenet-samples" / "n01440764_tench.JPEG"


def load_reference(folder: Path):
    """The package's ``corrupt`` from its source folder, patched to run on today's libraries."""
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = lambda pkg, name: str(Path(importlib.import_module(pkg).__file__).parent / name)
    sys.modules.setdefault("pkg_resources", shim)
    if not hasattr(np, "float_"):
        np.float_ = np.float64
    sys.path.insert(0, str(folder))
    import skimage.filters
    from imagecorruptions import corrupt
    from imagecorruptions import corruptions as module

    gaussian = skimage.filters.gaussian
    module.gaussian = lambda x, sigma, multichannel=None: gaussian(
        x, sigma=sigma, channel_axis=-1 if multichannel else None)
    return corrupt


def timed(fn, repeats: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return out, (time.perf_counter() - start) / repeats


def main() -> None:
    from clearsight.corruptions import CORRUPTIONS, corrupt

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, help="folder holding the imagecorruptions package's source")
    parser.add_argument("--severities", default="1,3,5")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    reference = load_reference(args.reference) if args.reference else None
    img = np.asarray(Image.open(PHOTO).convert("RGB").resize((224, 224)))
    print(f"photo {PHOTO.name} at 224x224; seconds are the mean of {args.repeats} calls")
    print(f"{'corruption':18s} sev  clearsight ms  package ms  ratio  max|diff|  share of values off by >1")
    for name in CORRUPTIONS:
        for severity in (int(s) for s in args.severities.split(",")):
            ours, t_ours = timed(lambda n=name, s=severity: corrupt(img, n, s, seed=7), args.repeats)
            if reference is None:
                print(f"{name:18s} {severity:3d}  {1e3 * t_ours:13.1f}")
                continue

            def theirs(n=name, s=severity):
                np.random.seed(7)
                return reference(img, severity=s, corruption_name=n)

            ref, t_ref = timed(theirs, args.repeats)
            diff = np.abs(ref.astype(int) - ours.astype(int))
            print(f"{name:18s} {severity:3d}  {1e3 * t_ours:13.1f}  {1e3 * t_ref:10.1f}  x{t_ref / t_ours:4.1f}  "
                  f"{diff.max():9d}  {(diff > 1).mean():.4f}")


if __name__ == "__main__":
    main()

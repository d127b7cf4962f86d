"""Regenerate the README gallery: one photo (the bundled chelsea cat) explained by the fast methods.

    PYTHONPATH=src python docs/make_gallery.py            # writes docs/gallery/*.png
    PYTHONPATH=src python docs/make_gallery.py --only moxi shapley

DeiT-Tiny is used for every method, so that attention rollout (ViTs only) sits beside the others; its weights
come from ``--weights`` (default: ../shared/models/deit_tiny_patch16_224.pth next to the repository). The
optimisation methods run with few steps and Shapley with few rounds, so the whole gallery takes a few CPU
minutes; each figure is a modest-DPI PNG (under 150 KB) so the repository stays small.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from clearsight.io import bundled_sample
from clearsight.methods import build_explainer
from clearsight.models import load_model
from clearsight.viz import save_figure

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "gallery"
MODEL = "timm:deit_tiny_patch16_224"
WEIGHTS = ROOT.parent / "shared" / "models" / "deit_tiny_patch16_224.pth"
#: file stem -> (method, options): fast settings, each seeded where the method is random
GALLERY = {
    "gradcam": ("gradcam", {}),
    "gradcampp": ("gradcampp", {}),
    "rollout": ("rollout", {}),
    "moxi": ("moxi", {"mode": "insertion"}),
    "moxi-minus": ("moxi-minus", {"mode": "insertion"}),
    "shapley": ("shapley", {"rounds": 4, "patch_size": 32, "seed": 0}),
    "pixel-rde": ("pixel-rde", {"steps": 40, "seed": 0}),
    "cartoonx": ("cartoonx", {"steps": 40, "seed": 0}),
}
DPI = 80
#: colours kept when the PNG is shrunk (a palette PNG of a photo stays readable and is ~3x smaller)
COLORS = 256


def shrink_png(path: Path) -> None:
    """Re-save the figure as a 256-colour palette PNG (atomically), so each gallery image stays under 150 KB;
    Floyd-Steinberg dithering keeps the photo's gradients and the colour bar free of bands."""
    from PIL import Image

    from clearsight.explanation import atomic_write

    with Image.open(path) as im:
        rgb = im.convert("RGB")
        palette = rgb.quantize(COLORS, method=Image.Quantize.FASTOCTREE)
        small = rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    atomic_write(path, lambda f: small.save(f, format="PNG", optimize=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(WEIGHTS), help="DeiT-Tiny weights (.pth)")
    parser.add_argument("--out", default=str(OUT), help="folder for the PNGs")
    parser.add_argument("--only", nargs="*", choices=list(GALLERY), help="regenerate only these")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    clf = load_model(MODEL, weights=args.weights)
    photo = bundled_sample()
    image = clf.prepare(photo)
    cls, prob = clf.predict(image[None])
    predicted = (clf.class_name(int(cls[0])), float(prob[0]))
    for stem, (method, options) in GALLERY.items():
        if args.only and stem not in args.only:
            continue
        explainer = build_explainer(method, options)
        start = time.perf_counter()
        explanation = explainer.explain(clf, image)
        path = save_figure(explainer.figure(image, explanation, predicted), Path(args.out) / f"{stem}.png", dpi=DPI)
        shrink_png(path)
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {time.perf_counter() - start:.1f} s, "
              f"{path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

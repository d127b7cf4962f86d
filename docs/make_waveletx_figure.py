"""Make the README's "WaveletX or CartoonX?" figure: one photo explained by CartoonX and by WaveletX.

    PYTHONPATH=src python docs/make_waveletx_figure.py     # writes docs/gallery/waveletx_vs_cartoonx.png

DeiT-Tiny (weights from ``--weights``, default ../shared/models/deit_tiny_patch16_224.pth next to the
repository) explains the bundled photo with both methods at their default settings but ``--steps`` steps
(few, so the figure takes a few CPU minutes). Each panel shows the explanation image the ``scores``
evaluation scores (the mask times the colour photo's coefficients, synthesised) with its hallucination score
and CP-entropy, so the figure shows what the numbers mean. A 256-colour PNG under 200 KB.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from clearsight.evaluation.scores_curve import explanation_image, score_explanation
from clearsight.io import bundled_sample
from clearsight.methods import build_explainer
from clearsight.models import load_model
from clearsight.viz import save_figure
from clearsight.viz.overlay import new_figure

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "gallery" / "waveletx_vs_cartoonx.png"
MODEL = "timm:deit_tiny_patch16_224"
WEIGHTS = ROOT.parent / "shared" / "models" / "deit_tiny_patch16_224.pth"
DPI = 80


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(WEIGHTS), help="DeiT-Tiny weights (.pth)")
    parser.add_argument("--out", default=str(OUT), help="the PNG to write")
    parser.add_argument("--photo", help="another photo (default: the bundled one)")
    parser.add_argument("--steps", type=int, default=150, help="optimisation steps of each method")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    clf = load_model(MODEL, weights=args.weights)
    image = clf.prepare(args.photo or bundled_sample())
    target = int(clf.logits(image[None])[0].argmax())
    fig = new_figure(10.5, 3.9)
    axes = fig.subplots(1, 3)
    axes[0].imshow(image.permute(1, 2, 0).numpy())
    axes[0].set_title(f"photo: {clf.class_name(target)}", fontsize=9)
    for ax, method in zip(axes[1:], ("cartoonx", "waveletx")):
        start = time.perf_counter()
        explanation = build_explainer(method, {"steps": args.steps, "seed": 0}).explain(clf, image, target)
        shown, _, _ = explanation_image(explanation, image)
        s = score_explanation(clf, image, explanation, target)
        ax.imshow(np.clip(shown.permute(1, 2, 0).numpy(), 0, 1))
        ax.set_title(f"{method}: hallucination {s['hallucination']:.2f}\nCP-entropy {s['cp_entropy']:.2f}, "
                     f"kept probability {s['retained_probability']:.2f}", fontsize=9)
        print(f"{method}: {time.perf_counter() - start:.0f} s, {s}")
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(f"DeiT-Tiny, {args.steps} steps each; lower hallucination: fewer edges the photo does not have",
                 fontsize=9)
    path = save_figure(fig, args.out, dpi=DPI)
    from make_gallery import shrink_png  # docs/ is on the path when this script runs

    shrink_png(path)
    print(f"{path}: {path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

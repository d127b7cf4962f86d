"""Hallucination and CP scores of simple image explanations on the sample photos (no mask optimisation).

Four explanation images per photo, each keeping about the same share of the photo:

* ``gradcam``: the photo times its Grad-CAM map (smooth, :func:`saliency_explanation_image`);
* ``blocks``: the photo times a binary mask of Grad-CAM's 7x7 cells above its 70th percentile (sharp borders);
* ``wavelet-top``: the photo's db3 coefficients, the largest ``--keep`` share of them kept (per channel);
* ``shearlet-top``: the same with the 49 shearlets.

It shows what the scores reward: a sparse explanation in a representation whose atoms follow the photo's
edges adds few edges of its own (low hallucination score), one with block borders adds many. CP scores use
each explanation's own representation (pixels for the first two).

    .venv/bin/python benchmarks/hallucination.py --photos 8

Measured (EfficientNet-Lite0, first 8 sample photos, keep 5%; means; 110 s on a loaded 2-core CPU):

    explanation    hallucination    CP-l1 CP-entropy retained p
    gradcam                0.002     3.85       2.92      0.870
    blocks                 0.291     1.96       1.96      0.554
    wavelet-top            0.005     0.97       0.68      0.639
    shearlet-top           0.001     0.63       0.52      0.489
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from clearsight.evaluation import cp_scores, hallucination_score, saliency_explanation_image
from clearsight.methods.gradcam import GradCAM
from clearsight.models import load_model
from clearsight.shearlets import ShearletTransform
from clearsight.wavelets import WaveletTransform

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLEARSIGHT_SHARED", ROOT.parent / "shared"))
SAMPLES = SHARED / "data" / "imagenet-samples"


def keep_top(bands: list[torch.Tensor], share: float) -> list[torch.Tensor]:
    """The bands with all but the largest ``share`` of coefficients (by magnitude, over all bands) zeroed."""
    flat = torch.cat([b.abs().flatten() for b in bands])
    cut = flat.kthvalue(max(1, int(round((1 - share) * flat.numel())))).values
    return [b * (b.abs() > cut) for b in bands]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--keep", type=float, default=0.05, help="share of coefficients kept by the *-top images")
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    clf = load_model("efficientnet_lite0")
    files = sorted(SAMPLES.glob("*.JPEG"))[: args.photos]
    wav, she = WaveletTransform(), ShearletTransform()
    rows = []
    t0 = time.time()
    for f in files:
        x = clf.prepare(f)
        target = int(clf.predict(x)[0][0])
        cam = torch.as_tensor(GradCAM().explain(clf, x, target).saliency)
        images = {"gradcam": saliency_explanation_image(x, cam)}
        cells = torch.nn.functional.interpolate(cam[None, None].float(), size=(7, 7), mode="area")[0, 0]
        blocks = (cells >= cells.flatten().quantile(0.7)).double()
        images["blocks"] = x.double() * torch.nn.functional.interpolate(blocks[None, None], size=x.shape[-2:],
                                                                         mode="nearest")[0]
        low, details = wav.forward(x.double())
        yl, *yh = keep_top([low, *details], args.keep)
        images["wavelet-top"] = wav.inverse(yl, list(yh), size=tuple(x.shape[-2:])).clamp(0, 1)
        images["shearlet-top"] = she.inverse(keep_top([she.forward(x.double())], args.keep)[0]).clamp(0, 1)
        reps = {"gradcam": "pixel", "blocks": "pixel", "wavelet-top": "wavelet", "shearlet-top": "shearlet"}
        for name, img in images.items():
            cp = cp_scores(clf, x, img, target, representation=reps[name])
            rows.append({"photo": f.name, "explanation": name, "hallucination": hallucination_score(img, x),
                         "cp_l1": cp.cp_l1, "cp_entropy": cp.cp_entropy,
                         "retained_probability": cp.retained_probability})
    print(f"{len(files)} photos in {time.time() - t0:.0f} s; means:")
    print(f"{'explanation':14s} {'hallucination':>13s} {'CP-l1':>8s} {'CP-entropy':>10s} {'retained p':>10s}")
    for name in ("gradcam", "blocks", "wavelet-top", "shearlet-top"):
        mean = {k: np.mean([r[k] for r in rows if r["explanation"] == name])
                for k in ("hallucination", "cp_l1", "cp_entropy", "retained_probability")}
        print(f"{name:14s} {mean['hallucination']:13.3f} {mean['cp_l1']:8.2f} {mean['cp_entropy']:10.2f} "
              f"{mean['retained_probability']:10.3f}")
    if args.csv is not None:
        from clearsight.explanation import atomic_write

        def write(fh) -> None:
            text = [",".join(rows[0])] + [",".join(str(v) for v in r.values()) for r in rows]
            fh.write(("\n".join(text) + "\n").encode())

        atomic_write(args.csv, write)


if __name__ == "__main__":
    main()

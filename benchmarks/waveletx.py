"""WaveletX / ShearletX presets: does the fast default end at an objective no higher than the paper preset's?

For each photo (DeiT-Tiny, the first N sample photos the model classifies correctly) the method runs with
``preset="paper"`` (the reference: 300 steps, 16 uniform noise samples, lr 0.1, fp32) and with the default
``preset="fast"``; each final mask is scored on the problem it solved (the method's distortion, maximise the
label, on 256 fixed uniform noise draws, seed ``EVAL_SEED``, plus lambda_k x mean mask plus spatial_lambda x
spatial l1: :func:`clearsight.methods.rde.rde_objective`). Prints one JSON line per run and a summary.

    PYTHONPATH=src python benchmarks/waveletx.py --method waveletx --images 3
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch

from clearsight.methods import build_explainer
from clearsight.methods.rde import Problem, arrays_to_masks, rde_objective
from clearsight.models import load_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared"  # ../shared beside the checkout
SAMPLES = SHARED / "data" / "imagenet-samples"
MODELS = SHARED / "models"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="waveletx", choices=["waveletx", "shearletx"])
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--skip", type=int, default=0, help="skip this many photos first")
    ap.add_argument("--presets", default="paper,fast")
    args = ap.parse_args()
    clf = load_model("timm:deit_tiny_patch16_224", weights=MODELS / "deit_tiny_patch16_224.pth")
    rows = list(csv.DictReader(open(SAMPLES / "labels.csv")))[args.skip:]
    done = 0
    summary: dict[str, list[float]] = {}
    for row in rows:
        if done >= args.images:
            break
        image = clf.prepare(SAMPLES / row["file"])
        if int(clf.logits(image[None])[0].argmax()) != int(row["class_index"]):
            continue
        done += 1
        for preset in args.presets.split(","):
            explainer = build_explainer(args.method, {"preset": preset})
            start = time.perf_counter()
            e = explainer.explain(clf, image, int(row["class_index"]))
            seconds = time.perf_counter() - start
            s = e.settings
            from clearsight.parts.representations import representation_from_settings

            rep = representation_from_settings(s)
            problem = Problem.build(clf, image, e.target, rep, s["lambda_k"], s["distortion"],
                                    noise_kind="uniform" if s["noise"] == "uniform" else "gaussian",
                                    spatial_lambda=s.get("spatial_lambda", 0.0))
            scores = rde_objective(problem, arrays_to_masks(rep, e.mask), distortion_kind=s["distortion"])
            summary.setdefault(preset, []).append(scores["objective"])
            print(json.dumps({"method": args.method, "photo": row["file"], "preset": preset, **scores,
                              "steps_run": s["steps_run"], "precision": s["precision_used"],
                              "seconds": round(seconds, 1)}), flush=True)
    print(json.dumps({"mean_objective": {k: sum(v) / len(v) for k, v in summary.items()}}))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()

"""WaveletX / ShearletX presets: does the fast default end at an objective no higher than the paper preset's?

For each photo (DeiT-Tiny, the first N sample photos the model classifies correctly) the method runs with
``preset="paper"`` (the reference: 300 steps, 16 uniform noise samples, lr 0.1, fp32) and with the default
``preset="fast"``; each final mask is scored on the problem it solved (the method's distortion, maximise the
label, on 256 fixed uniform noise draws, seed ``EVAL_SEED``, plus lambda_k x mean mask plus spatial_lambda x
spatial l1: :func:`clearsight.methods.rde.rde_objective`). Prints one JSON line per run and a summary.

A paper-preset run costs 4,800 forward+backward passes (about 13 minutes a photo for DeiT-Tiny on a busy
2-core CPU), so its result is kept in ``benchmarks/waveletx_paper.json`` (method, photo, objective, seconds)
and later runs compare against it without recomputing (``--recompute-paper`` to run it again).
``--sweep`` runs variants of the fast schedule instead of the default: each JSON overrides fields of
``FAST_SPATIAL`` (``steps``, ``samples``, ``lr``, ``lr_schedule``, ``min_steps``, ...) plus ``seed``.

    PYTHONPATH=src python benchmarks/waveletx.py --method waveletx --images 3
    PYTHONPATH=src python benchmarks/waveletx.py --method waveletx --images 2 --sweep '{"steps": 600, "min_steps": 540}'
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from clearsight.explanation import atomic_write_text
from clearsight.methods import build_explainer
from clearsight.methods.rde import Problem, arrays_to_masks, rde_objective
from clearsight.models import load_model
from clearsight.parts.representations import representation_from_settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"  # ../shared beside the checkout
SAMPLES = SHARED / "data" / "imagenet-samples"
MODELS = SHARED / "models"
PAPER_RESULTS = Path(__file__).resolve().parent / "waveletx_paper.json"


def objective(clf, image: torch.Tensor, explanation) -> dict[str, float]:
    """The objective the explanation's own problem minimised, on the fixed evaluation noise."""
    s = explanation.settings
    rep = representation_from_settings(s)
    problem = Problem.build(clf, image, explanation.target, rep, s["lambda_k"], s["distortion"],
                            noise_kind="uniform" if s["noise"] == "uniform" else "gaussian",
                            spatial_lambda=s.get("spatial_lambda", 0.0))
    return rde_objective(problem, arrays_to_masks(rep, explanation.mask), distortion_kind=s["distortion"])


def run(clf, method: str, image: torch.Tensor, target: int, preset: str, variant: dict | None = None) -> dict:
    """One explanation with ``preset`` (``variant``: overrides of the fast schedule, and ``seed``), scored."""
    changes = dict(variant or {})
    explainer = build_explainer(method, {"preset": preset, "seed": int(changes.pop("seed", 0))})
    if changes:
        base = explainer.schedule(clf)
        explainer.fast_schedule = lambda clf, base=base: replace(base, **changes)  # type: ignore[method-assign]
    start = time.perf_counter()
    e = explainer.explain(clf, image, target)
    seconds = time.perf_counter() - start
    return {**objective(clf, image, e), "steps_run": e.settings["steps_run"],
            "precision": e.settings["precision_used"], "seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="waveletx", choices=["waveletx", "shearletx"])
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--skip", type=int, default=0, help="skip this many photos first")
    ap.add_argument("--sweep", nargs="+", metavar="JSON", help="variants of the fast schedule instead of it")
    ap.add_argument("--recompute-paper", action="store_true", help="run the paper preset even where it is kept")
    args = ap.parse_args()
    clf = load_model("timm:deit_tiny_patch16_224", weights=MODELS / "deit_tiny_patch16_224.pth")
    rows = list(csv.DictReader(open(SAMPLES / "labels.csv")))[args.skip:]
    kept = json.loads(PAPER_RESULTS.read_text()) if PAPER_RESULTS.exists() else {}
    variants = [json.loads(v) for v in args.sweep] if args.sweep else [None]
    done = 0
    summary: dict[str, list[float]] = {}
    for row in rows:
        if done >= args.images:
            break
        image = clf.prepare(SAMPLES / row["file"])
        target = int(row["class_index"])
        if int(clf.logits(image[None])[0].argmax()) != target:
            continue
        done += 1
        key = f"{args.method}/{row['file']}"
        if key not in kept or args.recompute_paper:
            kept[key] = run(clf, args.method, image, target, "paper")
            on_disk = json.loads(PAPER_RESULTS.read_text()) if PAPER_RESULTS.exists() else {}  # another run's too
            atomic_write_text(PAPER_RESULTS, json.dumps({**on_disk, key: kept[key]}, indent=1, sort_keys=True) + "\n")
        paper = kept[key]
        print(json.dumps({"method": args.method, "photo": row["file"], "preset": "paper", **paper}), flush=True)
        summary.setdefault("paper", []).append(paper["objective"])
        for variant in variants:
            name = "fast" if variant is None else json.dumps(variant, sort_keys=True)
            scores = run(clf, args.method, image, target, "fast", variant)
            summary.setdefault(name, []).append(scores["objective"])
            print(json.dumps({"method": args.method, "photo": row["file"], "preset": name, **scores,
                              "vs_paper": round(scores["objective"] / paper["objective"], 4)}), flush=True)
    print(json.dumps({"mean_objective": {k: sum(v) / len(v) for k, v in summary.items()},
                      "wins_vs_paper": {k: sum(a <= b for a, b in zip(v, summary["paper"]))
                                        for k, v in summary.items() if k != "paper"}}))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()

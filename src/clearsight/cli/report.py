"""``clearsight compare``, ``report`` and ``models``: figures and pages over finished results, and the
models on offer."""

from __future__ import annotations

import argparse


def cmd_compare(args: argparse.Namespace) -> int:
    from ..evaluation.rate_distortion import compare_figure
    from ..viz.overlay import figure_path
    from .common import writable_folder

    out, _ = figure_path(args.out)  # an unknown suffix fails now; the path printed is the one written
    writable_folder(out.parent, "--out's folder")
    print(f"figure: {compare_figure(args.results, out, args.normalized, args.common_images)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..viz.report import build_report

    print(f"report: {build_report(args.folder, args.out, args.title)}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from ..models import BUILTIN, DEFAULT_MODEL, EXAMPLES

    print("built-in:")
    for name, desc in BUILTIN.items():
        print(f"  {name:32s} {desc}{' (default)' if name == DEFAULT_MODEL else ''}")
    print("specs (pass --weights PATH when offline):")
    for name, desc in EXAMPLES.items():
        print(f"  {name:32s} {desc}")
    print("  timm:NAME / torchvision:NAME / hf:ID   any classifier of those libraries")
    return 0

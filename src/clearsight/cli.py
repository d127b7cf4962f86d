"""The ``clearsight`` command line: ``explain``, ``models``, ``demo`` (and ``evaluate``).

User mistakes (a bad file, an unknown model or method, rollout on a CNN, a class out of range) print one
line, ``clearsight: error: ...``, and exit with status 2; Ctrl-C exits with 130. Results already written
stay valid: every file is written atomically, and ``explain`` skips images whose results exist unless
``--overwrite`` is given, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ClearsightError

DEFAULT_OUT = "clearsight-out"

#: CLI destinations that are passed to the method's constructor (when given) by ``build_explainer``.
METHOD_OPTIONS = [
    "target_layer", "eigen_smooth", "aug_smooth",  # Grad-CAM family
    "preset", "head_fusion", "discard_ratio",  # rollout (preset also names other methods' presets)
]


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="efficientnet_lite0",
                   help="efficientnet_lite0 (built in), timm:NAME, torchvision:NAME or hf:ID")
    g.add_argument("--weights", help="state_dict file to load (weights_only); needed offline for timm/torchvision")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    g.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16 autocast is 3-5x faster on CPUs with AVX512-BF16 (default fp32)")
    g.add_argument("--size", type=int, help="input size in pixels (default: the model's)")
    g.add_argument("--resize", choices=["crop", "squash"],
                   help="crop: resize short side and centre-crop (default); squash: resize to size x size")


def _add_method_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("method options (each applies to some methods only)")
    g.add_argument("--target-layer", help="Grad-CAM: module name to read (default: last conv stage / last block)")
    g.add_argument("--eigen-smooth", action="store_true", default=None, help="Grad-CAM: first principal component")
    g.add_argument("--aug-smooth", action="store_true", default=None, help="Grad-CAM: test-time augmentation")
    g.add_argument("--preset", help="rollout: vit-explain (default) or moxi; cartoonx/pixel-rde: paper")
    g.add_argument("--head-fusion", choices=["mean", "max", "min"], help="rollout: how heads are fused")
    g.add_argument("--discard-ratio", type=float, help="rollout: fraction of lowest attention entries dropped")


def build_parser() -> argparse.ArgumentParser:
    from .methods import available_methods

    parser = argparse.ArgumentParser(
        prog="clearsight", description="Explain what an image classifier looks at, and measure how faithfully.")
    parser.add_argument("--version", action="version", version=f"clearsight {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    methods = available_methods()
    ex = sub.add_parser("explain", help="explain images and save figures and results",
                        description="Explain one or more images; writes NAME_METHOD.png/.npz/.json to --out.")
    ex.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, ...)")
    ex.add_argument("--method", default="gradcam",
                    help="; ".join(f"{k}: {v}" for k, v in methods.items()) + " (default gradcam)")
    ex.add_argument("--target", help="class index or name to explain (default: the predicted class)")
    ex.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ex.add_argument("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    ex.add_argument("--overwrite", action="store_true", help="recompute results that already exist")
    _add_model_args(ex)
    _add_method_args(ex)
    ex.set_defaults(func=cmd_explain)

    mo = sub.add_parser("models", help="list the built-in model and the supported model specs")
    mo.set_defaults(func=cmd_models)

    de = sub.add_parser("demo", help="explain the bundled sample photo with the built-in model")
    de.add_argument("--method", default="gradcam", help="method to run (default gradcam)")
    de.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    de.set_defaults(func=cmd_demo)
    return parser


def _method_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in METHOD_OPTIONS if getattr(args, k, None) is not None}


def _load(args: argparse.Namespace):
    from .models import load_model

    return load_model(args.model, weights=args.weights, device=args.device, precision=args.precision)


def _seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def explain_file(clf, explainer, path: Path, target: str | None, out: Path, size: int | None = None,
                 resize: str | None = None, overwrite: bool = False) -> tuple[Path, str] | None:
    """Explain one file and write ``STEM_METHOD.{png,npz,json}``; None when results exist already."""
    from .viz import save_figure

    stem = out / f"{path.stem}_{explainer.name}"
    png = stem.with_suffix(".png")
    if png.exists() and stem.with_suffix(".json").exists() and not overwrite:
        return None
    image = clf.prepare(path, size=size, resize=resize)
    cls, prob = clf.predict(image[None])
    predicted = (clf.class_name(int(cls[0])), float(prob[0]))
    explanation = explainer.explain(clf, image, target)
    explanation.settings.setdefault("image", str(path))
    explanation.save(stem)
    save_figure(explainer.figure(image, explanation, predicted), png)
    return png, f"predicted {predicted[0]} ({predicted[1]:.1%}); explained {explanation.target_name}"


def cmd_explain(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .errors import ImageError
    from .methods import build_explainer

    _seed_everything(args.seed)
    explainer = build_explainer(args.method, _method_options(args))
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:  # fail before the (slow) model load
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ImageError(f"image not found: {missing[0]}{more}")
    clf = _load(args)
    target = clf.check_target(args.target) if args.target is not None else None
    out = Path(args.out)
    paths = [Path(p) for p in args.images]
    for path in tqdm(paths, desc=f"{args.method}", unit="image", disable=len(paths) < 2, file=sys.stderr):
        done = explain_file(clf, explainer, path, target, out, args.size, args.resize, args.overwrite)
        if done is None:
            print(f"{path}: result exists in {out} (use --overwrite to recompute)")
        else:
            print(f"{path}: {done[1]} -> {done[0]}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models import BUILTIN, DEFAULT_MODEL, EXAMPLES

    print("built-in:")
    for name, desc in BUILTIN.items():
        print(f"  {name:32s} {desc}{' (default)' if name == DEFAULT_MODEL else ''}")
    print("specs (pass --weights PATH when offline):")
    for name, desc in EXAMPLES.items():
        print(f"  {name:32s} {desc}")
    print("  timm:NAME / torchvision:NAME / hf:ID   any classifier of those libraries")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .io import bundled_sample
    from .methods import build_explainer
    from .models import load_model

    clf = load_model()
    explainer = build_explainer(args.method)
    png, summary = explain_file(clf, explainer, bundled_sample(), None, Path(args.out) / "demo", overwrite=True)
    print(f"{bundled_sample().name} with {clf.name}: {summary}")
    print(f"figure: {png}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ClearsightError as err:
        print(f"clearsight: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clearsight: interrupted; finished results are saved, run again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

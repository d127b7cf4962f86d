"""What every ``clearsight`` command shares: flag constants, loading the model, seeding, and mapping flags
to method options. Imported by every command module; imports none of them."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import MethodError

#: ``clearsight.methods.shapley.SAMPLINGS``, spelled out so that ``--help`` need not import torch
#: (tests/test_shapley.py checks that the two agree)
SHAPLEY_SAMPLINGS = ("plain", "antithetic", "stratified", "permutation", "permutation-antithetic")

DEFAULT_OUT = "clearsight-out"
#: ``clearsight evaluate``: rate-distortion figures (``clearsight.evaluation.rate_distortion.FIGURES``) and
#: each kind of curve's default methods
RD_CURVES = ("rd-keep", "rd-randomize")
#: deletion curves whose deleted patches show a corrupted or adversarial copy of the photo
REPLACEMENT_CURVES = ("corruption", "adversarial")
#: ``clearsight.corruptions.CORRUPTIONS``, spelled out so that ``--help`` need not import torch
#: (tests/test_replacement.py checks that the two agree)
CORRUPTION_NAMES = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "gaussian_blur", "defocus_blur",
                    "fog", "brightness", "contrast", "saturate", "pixelate", "jpeg_compression")
DEFAULT_CURVE_METHODS = "moxi,moxi-minus,gradcam,gradcampp,rollout,shapley"
DEFAULT_RD_METHODS = "cartoonx,pixel-rde,random-wavelet,random-pixel"

#: CLI destinations that are passed to the method's constructor (when given) by ``build_explainer``.
METHOD_OPTIONS = [
    "target_layer", "eigen_smooth", "aug_smooth",  # Grad-CAM family
    "preset", "head_fusion", "discard_ratio",  # rollout (preset also names other methods' presets)
    "steps", "lambda_k", "init", "samples", "lr", "render", "foreground_mask",  # CartoonX / Pixel RDE
    "spatial_lambda",  # WaveletX / ShearletX
    "mode", "tau", "full_order", "score", "absence", "patch_size", "rounds", "sampling",  # MoXI / Shapley
]


def method_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {k: getattr(args, k) for k in METHOD_OPTIONS if getattr(args, k, None) is not None}
    shared = {"seed": getattr(args, "seed", None), "precision": getattr(args, "precision", None)}
    return with_shared(args.method, options, shared)


def with_shared(method: str, options: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Pass options that are not the method's alone (``--seed``, ``--precision``) on to methods whose
    constructor takes them (Shapley sampling and the RDE methods take a seed; the RDE methods choose their
    own precision unless told)."""
    import inspect

    from ..methods import METHODS, explainer_class

    if method not in METHODS:
        return options
    cls, fixed = explainer_class(method)
    accepted = inspect.signature(cls.__init__).parameters
    extra = {k: v for k, v in shared.items() if v is not None and k in accepted and k not in fixed}
    return {**options, **extra}


def load_classifier(args: argparse.Namespace):
    from ..models import load_model

    return load_model(args.model, weights=args.weights, device=args.device, precision=args.precision or "fp32")


def seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def model_spec(args: argparse.Namespace):
    """The model flags as a :class:`~clearsight.evaluation.driver.ModelSpec`, which workers of any engine
    load themselves."""
    from ..evaluation.driver import ModelSpec

    return ModelSpec(args.model, args.weights, args.device, args.precision or "fp32")


def split_names(text: str) -> list[str]:
    """Comma-separated values, blanks dropped."""
    return [v.strip() for v in text.split(",") if v.strip()]


def lambdas(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise MethodError(f"--lambdas takes comma-separated numbers, e.g. 4,8,16; got {text!r}")
    return values

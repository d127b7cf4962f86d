"""Explanation methods, one file each, all returning an `Explanation`.

``build_explainer(name, options)`` is how the CLI and the experiment runner make a method from its name.
Classes are imported lazily so that a method's optional dependencies load only when it is used. Options
that a method does not take are refused with a clear error rather than silently ignored.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ..errors import MethodError, OptionError
from .base import Explainer, RunControl

#: name -> ("module:Class", fixed constructor arguments, one-line description)
METHODS: dict[str, tuple[str, dict[str, Any], str]] = {
    "gradcam": ("clearsight.methods.gradcam:GradCAM", {}, "Grad-CAM (CNNs and ViTs)"),
    "gradcampp": ("clearsight.methods.gradcampp:GradCAMPlusPlus", {}, "Grad-CAM++ (CNNs and ViTs)"),
    "rollout": ("clearsight.methods.rollout:AttentionRollout", {}, "attention rollout (ViTs only)"),
    "cartoonx": ("clearsight.methods.cartoonx:CartoonX", {}, "CartoonX: sparse wavelet mask (RDE)"),
    "pixel-rde": ("clearsight.methods.pixel_rde:PixelRDE", {}, "Pixel RDE: sparse pixel mask"),
    "waveletx": ("clearsight.methods.waveletx:WaveletX", {}, "WaveletX: CartoonX plus a spatial l1 term (RDE)"),
    "shearletx": ("clearsight.methods.waveletx:ShearletX", {}, "ShearletX: sparse shearlet mask, spatial l1 (RDE)"),
    "moxi": ("clearsight.methods.moxi:MoXI", {}, "MoXI: greedy patch insertion/deletion with interactions"),
    "moxi-minus": ("clearsight.methods.moxi:MoXI", {"interactions": False},
                   "MoXI(-): patches ranked by self-/full-context Shapley values"),
    "shapley": ("clearsight.methods.shapley:ShapleySampling", {}, "sampled Shapley values of patches"),
}


def available_methods() -> dict[str, str]:
    """Method names and one-line descriptions."""
    return {name: desc for name, (_, _, desc) in METHODS.items()}


def explainer_class(name: str) -> tuple[type[Explainer], dict[str, Any]]:
    if name not in METHODS:
        raise MethodError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    target, fixed, _ = METHODS[name]
    module_name, _, cls_name = target.partition(":")
    return getattr(importlib.import_module(module_name), cls_name), fixed


def method_options(name: str) -> list[str]:
    """The options method ``name`` takes (its constructor's keyword arguments, less the fixed ones)."""
    cls, fixed = explainer_class(name)
    params = inspect.signature(cls.__init__).parameters
    return [k for k, p in params.items() if k != "self" and k not in fixed
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_options(name: str, options: dict[str, Any]) -> None:
    """Raise :class:`~clearsight.errors.OptionError` for options method ``name`` does not take.

    An option some other method takes (``tau`` for gradcam) "does not apply"; one no method takes is
    "unknown" and the error lists what the method does take (a typo is the likely cause).
    """
    accepted = set(method_options(name))
    wrong = sorted(k for k in options if k not in accepted)
    if not wrong:
        return
    everywhere = {k for other in METHODS for k in method_options(other)}
    unknown = [k for k in wrong if k not in everywhere]
    if unknown:
        raise OptionError(name, unknown, known=False, accepted=method_options(name))
    raise OptionError(name, wrong)


def build_explainer(name: str, options: dict[str, Any] | None = None) -> Explainer:
    """Make the method ``name`` with ``options`` (None values are dropped); options it does not take raise
    :class:`~clearsight.errors.OptionError` (whose ``cli_message()`` names them as ``--flags``)."""
    cls, fixed = explainer_class(name)
    given = {k: v for k, v in (options or {}).items() if v is not None}
    check_options(name, given)
    return cls(**fixed, **given)


__all__ = ["METHODS", "Explainer", "RunControl", "available_methods", "build_explainer", "check_options",
           "explainer_class", "method_options"]

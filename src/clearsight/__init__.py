"""clearsight: explain what an image classifier looks at, and measure how faithful the explanation is.

``clearsight.explain(model, images, method="gradcam", target=None, **options)`` is the one call most users
need; the method classes (``GradCAM``, ``GradCAMPlusPlus``, ``AttentionRollout``, ``CartoonX``, ``PixelRDE``,
``WaveletX``, ``ShearletX``, ``MoXI`` (``MoXI(interactions=False)`` is MoXI(-)), ``ShapleySampling``) take
the same options as keyword arguments and are imported on first use, so that ``import clearsight`` stays fast
and loads no method's dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

from .api import explain
from .errors import ClearsightError, MethodError, OptionError
from .explanation import Explanation
from .io import load_image
from .models import Classifier, Preprocessing, TokenClassifier, load_model, wrap_model

__version__ = "0.1.0"

#: Method classes, imported lazily: name -> module.
METHOD_CLASSES = {
    "GradCAM": "clearsight.methods.gradcam",
    "GradCAMPlusPlus": "clearsight.methods.gradcampp",
    "AttentionRollout": "clearsight.methods.rollout",
    "CartoonX": "clearsight.methods.cartoonx",
    "PixelRDE": "clearsight.methods.pixel_rde",
    "WaveletX": "clearsight.methods.waveletx",
    "ShearletX": "clearsight.methods.waveletx",
    "MoXI": "clearsight.methods.moxi",
    "ShapleySampling": "clearsight.methods.shapley",
}

__all__ = ["ClearsightError", "Classifier", "Explanation", "MethodError", "OptionError", "Preprocessing",
           "TokenClassifier", "explain", "load_image", "load_model", "wrap_model", "__version__",
           *METHOD_CLASSES]


def __getattr__(name: str) -> Any:
    if name in METHOD_CLASSES:
        value = getattr(importlib.import_module(METHOD_CLASSES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'clearsight' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Bridges to other libraries' conventions, so clearsight's methods plug into their tools.

:func:`quantus_explain_func` gives a function with Quantus' ``explain_func`` contract (Quantus 0.6:
``explain_func(model=..., inputs=..., targets=..., **explain_func_kwargs) -> np.ndarray``, where ``model``
is the user's ``torch.nn.Module``, ``inputs`` a channel-first ``(B,C,H,W)`` batch in the model's own input
space (usually normalised) and ``targets`` the ``(B,)`` class indices; it returns one map per image, which
Quantus expands to ``(B,1,H,W)`` itself). Quantus' metrics can then score any clearsight method, e.g.
``quantus.MaxSensitivity()(model, x_batch, y_batch, explain_func=quantus_explain_func("gradcam"))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .api import as_classifier, as_explainer, pixels
from .models import Preprocessing


def quantus_explain_func(method: Any = "gradcam", *, preprocessing: Preprocessing | dict | None = None,
                         normalized: bool = True, **options: Any) -> Callable[..., np.ndarray]:
    """A Quantus ``explain_func`` running clearsight's ``method`` (a name, class or object) with ``options``.

    ``preprocessing`` is the model's input normalisation (default: 224 px, ImageNet mean/std) and
    ``normalized`` says whether Quantus' ``x_batch`` is normalised with it (default True: Quantus feeds
    ``x_batch`` to the model as it is, so it is in the model's input space). The function returns
    ``(B,H,W)`` float32 saliency maps, each exactly what ``clearsight.explain`` gives for that image and
    target. The model is wrapped without being changed (see :func:`~clearsight.models.wrap_model`).
    """
    explainer = as_explainer(method, options)

    def explain_func(model: torch.nn.Module, inputs: np.ndarray | torch.Tensor, targets: Any,
                     **_quantus_kwargs: Any) -> np.ndarray:
        """Quantus calls this with its own keyword arguments (``device``, ...), which need nothing here."""
        clf = as_classifier(model, preprocessing=preprocessing)
        if isinstance(inputs, torch.Tensor):
            inputs = inputs.detach()
        images = pixels(np.asarray(inputs, dtype=np.float32) if not isinstance(inputs, torch.Tensor)
                        else inputs.float(), clf, normalized)
        wanted = np.asarray(targets.detach().cpu() if isinstance(targets, torch.Tensor) else targets).reshape(-1)
        if wanted.size == 1 and images.shape[0] > 1:
            wanted = np.repeat(wanted, images.shape[0])
        explanations = explainer.explain(clf, images, [int(t) for t in wanted])
        return np.stack([np.asarray(e.saliency, dtype=np.float32) for e in explanations])

    explain_func.__name__ = f"clearsight_{getattr(explainer, 'name', 'method')}"
    return explain_func


__all__ = ["quantus_explain_func"]

"""`clearsight.explain`: one call from (model, images, method) to explanations.

It accepts what users already have: a model spec string, a :class:`~clearsight.models.Classifier` or any
``torch.nn.Module``; a path, a list of paths, a PIL image, a ``(3,H,W)`` or ``(B,3,H,W)`` tensor (or numpy
array); a method name with keyword options, a method class or a method object. Everything else (resizing,
normalisation, batching, the module's state) is handled by the classifier and the method, so this module
only converts arguments and checks the mistakes that would otherwise give a silently wrong answer, such as
an ImageNet-normalised tensor explained as if it were pixels.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from .errors import InputShapeError, MethodError, ModelError, OptionError
from .explanation import Explanation
from .models import Classifier, Preprocessing, load_model, wrap_model
from .models.classifier import Precision

#: How far outside [0,1] pixel values may stray (float rounding of a resize) before they are refused.
RANGE_SLACK = 1e-3

ModelLike = str | Classifier | nn.Module
ImageLike = str | os.PathLike | Image.Image | torch.Tensor | np.ndarray


@functools.lru_cache(maxsize=2)
def _load_cached(spec: str, weights: str | None, device: str, precision: Precision) -> Classifier:
    """Loading a model costs seconds: ``explain`` called in a loop with one spec loads it once."""
    return load_model(spec, weights=weights, device=device, precision=precision)


def as_classifier(model: ModelLike, *, preprocessing: Preprocessing | dict | None = None,
                  weights: str | os.PathLike | None = None, device: str | None = None,
                  precision: Precision = "fp32", class_names: Sequence[str] | None = None) -> Classifier:
    """A :class:`Classifier` for a spec string (loaded, the last two kept loaded), a Classifier (as is) or
    an ``nn.Module`` (wrapped, without changing it: see :func:`~clearsight.models.wrap_model`).

    ``preprocessing`` (a :class:`Preprocessing` or a dict of its fields, e.g. ``{"mean": ..., "std": ...}``)
    says how a module of your own expects its input; default: 224 px, ImageNet mean/std.
    """
    if isinstance(model, Classifier):
        if preprocessing is not None or weights is not None:
            raise ModelError("preprocessing= and weights= apply to a model spec or an nn.Module, not to a "
                             "Classifier (it has its own)")
        return model
    if isinstance(model, str):
        if preprocessing is not None:
            raise ModelError(f"preprocessing= applies to an nn.Module; {model!r} brings its own")
        return _load_cached(model, None if weights is None else str(weights), device or "cpu", precision)
    if isinstance(model, nn.Module):
        if weights is not None:
            raise ModelError("weights= applies to a model spec; load the state_dict into your module yourself")
        if isinstance(preprocessing, dict):
            known = {f.name for f in fields(Preprocessing)}
            wrong = sorted(set(preprocessing) - known)
            if wrong:
                raise ModelError(f"unknown preprocessing field(s) {', '.join(wrong)}; use {', '.join(sorted(known))}")
            preprocessing = Preprocessing(**{k: tuple(v) if k in ("mean", "std") else v
                                             for k, v in preprocessing.items()})
        return wrap_model(model, preprocessing, name=type(model).__name__, device=device, precision=precision,
                          class_names=None if class_names is None else list(class_names))
    raise ModelError(f"model must be a spec string, a clearsight Classifier or a torch.nn.Module; got "
                     f"{type(model).__name__}")


def pixels(images: torch.Tensor | np.ndarray, clf: Classifier, normalized: bool = False) -> torch.Tensor:
    """A float tensor of images in [0,1] on the classifier's device, from a tensor or array in [0,1] or, with
    ``normalized=True``, normalised with the classifier's mean/std (then un-normalised here).

    Values outside [0,1] without ``normalized=True`` are refused: a normalised tensor would otherwise be
    explained as a different picture, for a wrong class, without any error.
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    images = Classifier.check_images(images).to(clf.device)
    if normalized:
        prep = clf.preprocessing
        mean = torch.tensor(prep.mean, device=clf.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(prep.std, device=clf.device, dtype=images.dtype).view(1, 3, 1, 1)
        return images.detach() * std + mean
    low, high = float(images.min()), float(images.max())
    if low < -RANGE_SLACK or high > 1 + RANGE_SLACK:
        raise InputShapeError(
            f"image values span [{low:.3g}, {high:.3g}], not [0,1]: clearsight takes pixels in [0,1] and "
            f"normalises them itself. For a tensor normalised with the model's mean/std, pass normalized=True "
            f"(or un-normalise it first)")
    return images.detach().clamp(0, 1)


def as_images(images: ImageLike | Sequence[ImageLike], clf: Classifier,
              normalized: bool = False) -> tuple[torch.Tensor | list[torch.Tensor], bool]:
    """``(images, single)``: one ``(3,H,W)`` tensor (``single``) or a list of them, in [0,1].

    Paths and PIL images are prepared as the model expects (resized and cropped to its input size); tensors
    and arrays are taken as they are (``(3,H,W)`` is one image, ``(B,3,H,W)`` a batch).
    """
    if isinstance(images, (str, os.PathLike, Image.Image)):
        return clf.prepare(images), True
    if isinstance(images, (torch.Tensor, np.ndarray)):
        batch = pixels(images, clf, normalized)
        return (batch[0], True) if images.ndim == 3 else (list(batch), False)
    if isinstance(images, Sequence) and len(images) > 0:
        out: list[torch.Tensor] = []
        for item in images:
            if isinstance(item, (torch.Tensor, np.ndarray)) and item.ndim != 3:
                raise InputShapeError(f"a list of images takes (3,H,W) tensors; got shape {tuple(item.shape)}")
            image, _ = as_images(item, clf, normalized)
            out.append(image)  # type: ignore[arg-type]
        return out, False
    raise InputShapeError(f"images must be a path, a PIL image, a (3,H,W) or (B,3,H,W) tensor, or a non-empty "
                          f"list of them; got {type(images).__name__}")


def as_explainer(method: Any, options: dict[str, Any]):
    """A method object from a name (``"gradcam"``) and options, a method class and options, or a method
    object (then options belong in its constructor)."""
    from .methods import METHODS, Explainer, build_explainer

    if isinstance(method, str):
        return build_explainer(method, options)
    if isinstance(method, Explainer):
        if options:
            raise MethodError(f"options {', '.join(map(repr, sorted(options)))} go to the method's constructor "
                              f"when a method object is given: {type(method).__name__}(...)")
        return method
    if isinstance(method, type) and issubclass(method, Explainer):
        import inspect

        accepted = [k for k in inspect.signature(method.__init__).parameters if k != "self"]
        wrong = sorted(k for k in options if k not in accepted)
        if wrong:
            names = [n for n, (target, fixed, _) in METHODS.items() if target.endswith(":" + method.__name__)]
            raise OptionError(names[0] if names else method.__name__, wrong, known=False, accepted=accepted)
        return method(**options)
    raise MethodError(f"method must be a method name ({', '.join(METHODS)}), a method class or a method object; "
                      f"got {type(method).__name__}")


def explain(model: ModelLike, images: ImageLike | Sequence[ImageLike], method: Any = "gradcam",
            target: int | str | None | Sequence[int | str | None] = None, *,
            preprocessing: Preprocessing | dict | None = None, normalized: bool = False,
            weights: str | os.PathLike | None = None, device: str | None = None, precision: Precision = "fp32",
            class_names: Sequence[str] | None = None, progress: bool = True,
            checkpoint_dir: str | Path | None = None, threads: int | str | None = "auto",
            **options: Any) -> Explanation | list[Explanation]:
    """Explain what ``model`` looks at in ``images``.

    Args:
        model: a spec (``"efficientnet_lite0"``, ``"timm:NAME"``, ``"torchvision:NAME"``, ``"hf:ID"``; with
            ``weights=PATH`` for a local state_dict), a :class:`~clearsight.models.Classifier`, or any
            ``torch.nn.Module`` returning logits (``preprocessing=`` describes its input normalisation,
            default ImageNet mean/std at 224 px). Your module is left exactly as it was (training mode,
            ``requires_grad``, weight layout, device).
        images: a path, a list of paths, a PIL image, a ``(3,H,W)`` or ``(B,3,H,W)`` tensor or array with
            values in [0,1] (``normalized=True`` if it is normalised with the model's mean/std), or a list.
        method: a name (``gradcam``, ``gradcampp``, ``rollout``, ``cartoonx``, ``pixel-rde``, ``moxi``,
            ``moxi-minus``, ``shapley``), a method class (``clearsight.GradCAM``) or a method object
            (``clearsight.GradCAM(eigen_smooth=True)``).
        target: the class to explain (index or name; default: the prediction), or one per image.
        progress, checkpoint_dir: run control of long methods: a progress bar on stderr for MoXI, Shapley,
            CartoonX and Pixel RDE (on by default; ``progress=False`` silences it) and where CartoonX and Pixel
            RDE keep resumable state; they never change the result.
        threads: torch threads for this call: a number, ``"auto"`` (the cores idle now, so that a busy
            machine does not make the run collapse; see :mod:`clearsight.threads`) or None (torch's own
            setting). Restored when the call returns.
        **options: the method's options (see its class docstring), e.g. ``tau=0.5`` for MoXI; an option the
            method does not take raises :class:`~clearsight.errors.OptionError`.

    Returns:
        An :class:`~clearsight.explanation.Explanation` for one image (a path, a PIL image, a ``(3,H,W)``
        tensor), else a list of them in input order.
    """
    explainer = as_explainer(method, options)
    clf = as_classifier(model, preprocessing=preprocessing, weights=weights, device=device, precision=precision,
                        class_names=class_names)
    prepared, single = as_images(images, clf, normalized)
    if single and isinstance(target, (list, tuple)):
        raise InputShapeError(f"{len(target)} targets for one image")
    from .threads import using_threads

    with using_threads(threads):
        return explainer.explain(clf, prepared, target, progress=progress, checkpoint_dir=checkpoint_dir)


__all__ = ["as_classifier", "as_explainer", "as_images", "explain", "pixels"]

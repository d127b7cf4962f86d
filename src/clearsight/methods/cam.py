"""The machinery shared by Grad-CAM and Grad-CAM++: find the layer, capture it, weight it, smooth it.

A CAM variant differs only in how it turns gradients into one weight per channel (``channel_weights``);
everything else lives here: choosing the target layer (a CNN's last convolutional stage, a ViT's last
block's first LayerNorm with tokens reshaped to the patch grid), capturing activations inside a ``with``
block that always removes its hook, batching, eigen-smoothing and test-time-augmentation smoothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from ..errors import MethodError
from ..explanation import Explanation
from ..models import Classifier, TokenClassifier, resize_map
from .base import CostMeter, Explainer, RunControl, single_image


def find_last_conv_stage(clf: Classifier) -> str:
    """Name of the last module whose output is a spatial feature map (4-D, more than 1x1).

    Found by running one probe image and watching every module: for a CNN this is the output of its last
    convolutional stage, just before global pooling, whatever the architecture calls it.
    """
    last: list[str] = []
    handles = []

    def watch(name: str):
        def hook(_module, _inp, out):
            if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[-1] > 1 and out.shape[-2] > 1:
                last.append(name)
        return hook

    for name, module in clf.model.named_modules():
        if name:
            handles.append(module.register_forward_hook(watch(name)))
    try:
        with torch.no_grad():
            size = clf.input_size
            clf.model(clf.normalize(torch.zeros(1, 3, size, size, device=clf.device)))
    finally:
        for h in handles:
            h.remove()
    if not last:
        raise MethodError(f"{clf.name} has no spatial feature map for Grad-CAM; pass target_layer=NAME")
    return last[-1]


_LAST_CONV: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()


def resolve_layer(clf: Classifier, target_layer: str | None) -> nn.Module:
    """The module Grad-CAM reads: a named one, or the default for the model type (searched once per model)."""
    if target_layer:
        try:
            return clf.model.get_submodule(target_layer)
        except AttributeError:
            raise MethodError(f"{clf.name} has no module named {target_layer!r}") from None
    if isinstance(clf, TokenClassifier):
        return clf.gradcam_layer()
    if clf.model not in _LAST_CONV:
        _LAST_CONV[clf.model] = find_last_conv_stage(clf)
    return clf.model.get_submodule(_LAST_CONV[clf.model])


@contextmanager
def capture_output(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record ``module``'s outputs while the block runs; the hook is removed on exit, even on error."""
    store: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: store.append(out))
    try:
        yield store
    finally:
        handle.remove()


def tokens_to_grid(clf: Classifier, act: torch.Tensor) -> torch.Tensor:
    """ViT tokens ``(B,T,C)`` to a feature map ``(B,C,gh,gw)``, prefix tokens dropped."""
    if act.ndim == 4:
        return act
    if not isinstance(clf, TokenClassifier):
        raise MethodError(f"the target layer of {clf.name} gives {act.ndim}-D output; pick a convolutional layer")
    gh, gw = clf.grid
    if act.ndim != 3 or act.shape[1] != clf.num_prefix_tokens + gh * gw:
        raise MethodError(f"the target layer of {clf.name} gives output of shape {tuple(act.shape)}, not one token "
                          f"per patch ({clf.num_prefix_tokens} + {gh}x{gw}); pick a layer whose output keeps "
                          "every token, or the default")
    patches = act[:, clf.num_prefix_tokens:]
    return patches.reshape(act.shape[0], gh, gw, act.shape[-1]).permute(0, 3, 1, 2)


def first_principal_projection(weighted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Eigen-CAM smoothing: project each position's channel vector on the first principal component.

    ``weighted``: ``(B,C,h,w)``. The SVD's sign is arbitrary, so each map is oriented to correlate positively
    with ``reference`` (the unsmoothed CAM) and highlight the same regions.
    """
    B, C, h, w = weighted.shape
    flat = weighted.reshape(B, C, h * w).transpose(1, 2).double()  # (B, hw, C)
    flat = flat - flat.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(flat, full_matrices=False)
    proj = (flat @ vh[:, 0, :, None]).squeeze(-1).reshape(B, h, w).float()
    ref = reference.reshape(B, -1)
    sign = torch.sign(((proj.reshape(B, -1) - proj.reshape(B, -1).mean(1, keepdim=True))
                       * (ref - ref.mean(1, keepdim=True))).sum(1))
    sign[sign == 0] = 1
    return proj * sign[:, None, None]


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Scale each ``(h,w)`` map of a batch to [0,1] (a constant map becomes all zeros)."""
    flat = maps.reshape(maps.shape[0], -1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).reshape(maps.shape)


#: Test-time augmentations of ``aug_smooth``: horizontal flip x brightness factor, as in the reference.
AUGMENTATIONS = [(flip, factor) for flip in (False, True) for factor in (0.9, 1.0, 1.1)]


class CAMExplainer(Explainer):
    """Base of the CAM family. Subclasses implement :meth:`channel_weights`.

    Args:
        target_layer: dotted module name to read; default: a CNN's last convolutional stage, or a ViT's last
            block's first LayerNorm.
        eigen_smooth: replace the weighted channel sum by its first principal component (Eigen-CAM style).
        aug_smooth: average the CAM over 6 test-time augmentations (flip x brightness 0.9/1.0/1.1).
        batch_size: images per backward pass in :meth:`maps`.
    """

    def __init__(self, target_layer: str | None = None, eigen_smooth: bool = False, aug_smooth: bool = False,
                 batch_size: int = 16) -> None:
        self.target_layer = target_layer
        self.eigen_smooth = bool(eigen_smooth)
        self.aug_smooth = bool(aug_smooth)
        self.batch_size = batch_size

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """One weight per channel, ``(B,C)``, from activations and gradients ``(B,C,h,w)``."""
        raise NotImplementedError

    def _raw_maps(self, clf: Classifier, images: torch.Tensor, targets: torch.Tensor | None,
                  layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unnormalised CAMs ``(B,h,w)`` (after ReLU), the logits and the targets, from one forward and
        one backward pass. ``targets=None`` explains each image's predicted class."""
        x = images.detach().clone().requires_grad_(True)
        # Always fp32: bf16 gradients are too coarse for CAMs (Grad-CAM++ on DeiT-Tiny kept r=0.28 with the
        # fp32 map in benchmarks/methods.py), and a CAM costs a single pass anyway.
        with torch.enable_grad(), capture_output(layer) as store, clf.using_precision("fp32"):
            logits = clf(x)
            act = store[-1] if store and isinstance(store[-1], torch.Tensor) else None
            if act is None or not act.requires_grad:
                raise MethodError(f"target layer {self.target_layer!r} gives {clf.name} no tensor on the way to "
                                  "the prediction; pick a convolutional or normalisation layer (or the default)")
            if targets is None:
                targets = logits.argmax(1)
            score = logits.gather(1, targets[:, None]).sum()
            (grad,) = torch.autograd.grad(score, act, allow_unused=True)
            if grad is None:
                raise MethodError(f"the prediction of {clf.name} does not depend on target layer "
                                  f"{self.target_layer!r}; pick another layer (or the default)")
        act, grad = tokens_to_grid(clf, act.detach().float()), tokens_to_grid(clf, grad.float())
        weights = self.channel_weights(act, grad)
        weighted = weights[:, :, None, None] * act
        cam = weighted.sum(1)
        if self.eigen_smooth:
            cam = first_principal_projection(weighted, cam)
        return cam.clamp_min(0), logits.detach(), targets

    def maps(self, clf: Classifier, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched CAMs for ``images`` ``(B,3,H,W)`` and ``targets`` ``(B,)``.

        Returns ``(raw, normalised)``, both at the feature-map resolution ``(B,h,w)``; the normalised map is
        min-max scaled per image (averaged over augmentations when ``aug_smooth``).
        """
        images = clf.check_images(images).to(clf.device)
        targets = torch.as_tensor(targets, device=clf.device).long().reshape(-1)
        layer = resolve_layer(clf, self.target_layer)
        raws, norms = [], []
        for s in clf.batches(images.shape[0], self.batch_size):
            if not self.aug_smooth:
                raw = self._raw_maps(clf, images[s], targets[s], layer)[0]
                raws.append(raw)
                norms.append(minmax(raw))
                continue
            chunk, tgt = images[s], targets[s]
            aug = torch.cat([(c.flip(-1) if flip else c) * factor for flip, factor in AUGMENTATIONS
                             for c in [chunk]])
            raw = self._raw_maps(clf, aug, tgt.repeat(len(AUGMENTATIONS)), layer)[0]
            raw = raw.reshape(len(AUGMENTATIONS), chunk.shape[0], *raw.shape[1:])
            raw = torch.stack([r.flip(-1) if flip else r for r, (flip, _) in zip(raw, AUGMENTATIONS)])
            raws.append(raw.mean(0))
            norms.append(torch.stack([minmax(r) for r in raw]).mean(0))
        return torch.cat(raws), torch.cat(norms)

    def explain_one(self, clf: Classifier, image: torch.Tensor, target: int | str | None = None,
                    run: RunControl = RunControl()) -> Explanation:
        image = single_image(clf, image)
        meter = CostMeter(clf)
        with meter.measure():
            layer = resolve_layer(clf, self.target_layer)
            wanted = None if target is None else torch.tensor([clf.check_target(target)], device=clf.device)
            # One pass gives the prediction, the clean probability and the map together.
            raw, logits, chosen = self._raw_maps(clf, image[None], wanted, layer)
            target = int(chosen[0])
            norm = minmax(raw)
            if self.aug_smooth:
                raw, norm = self.maps(clf, image[None], chosen)
            saliency = resize_map(norm[0], tuple(image.shape[-2:]))
        return Explanation(
            method=self.name, target=target, target_name=clf.class_name(target), model=clf.name,
            saliency=saliency.cpu().numpy().astype(np.float32), score=float(logits.softmax(1)[0, target]),
            arrays={"grid": norm[0].cpu().numpy(), "raw": raw[0].cpu().numpy()},
            cost=meter.as_dict(), settings=self.settings(),
        )

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
from .base import DEFAULT_RUN, CostMeter, Explainer, RunControl, same_size_chunks, share_cost, single_image


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
        with torch.no_grad(), clf.inference_state():
            size = clf.input_size
            clf.model(clf.normalize(torch.zeros(1, 3, size, size, device=clf.device)))
    finally:
        for h in handles:
            h.remove()
    if not last:
        raise MethodError(f"{clf.name} has no spatial feature map for Grad-CAM; pass target_layer=NAME")
    return last[-1]


_LAST_CONV: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()


def layer_name(clf: Classifier, target_layer: str | nn.Module | None) -> str:
    """The dotted name, inside ``clf.model``, of the layer Grad-CAM reads.

    ``target_layer`` is a name, a module object of the model (found by identity), or None for the default
    of the model type: a ViT's last block's first LayerNorm, a CNN's last convolutional stage (searched
    once per model).
    """
    if isinstance(target_layer, nn.Module):
        for name, module in clf.model.named_modules():
            if module is target_layer:
                return name
        raise MethodError(f"target_layer {type(target_layer).__name__} is not a module of {clf.name}; pass a "
                          "module of the explained model (or its name)")
    if target_layer:
        try:
            clf.model.get_submodule(target_layer)
        except AttributeError:
            raise MethodError(f"{clf.name} has no module named {target_layer!r}") from None
        return target_layer
    if isinstance(clf, TokenClassifier):
        wanted = clf.gradcam_layer()
        return next(name for name, module in clf.model.named_modules() if module is wanted)
    if clf.model not in _LAST_CONV:
        _LAST_CONV[clf.model] = find_last_conv_stage(clf)
    return _LAST_CONV[clf.model]


def resolve_layer(clf: Classifier, target_layer: str | nn.Module | None) -> nn.Module:
    """The module Grad-CAM reads (see :func:`layer_name`)."""
    return clf.model.get_submodule(layer_name(clf, target_layer))


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

    Options (keyword arguments; the same for :class:`~clearsight.methods.gradcam.GradCAM` and
    :class:`~clearsight.methods.gradcampp.GradCAMPlusPlus`):
        target_layer: the layer whose activations are weighted, as a dotted module name (``"features.18"``)
            or the module object itself (``model.layer4``); default: a CNN's last convolutional stage, or a
            ViT's last block's first LayerNorm (its patch tokens reshaped to the patch grid).
        eigen_smooth: replace the weighted channel sum by its first principal component (Eigen-CAM style):
            less noise, sometimes a different emphasis.
        aug_smooth: average the CAM over 6 test-time augmentations (flip x brightness 0.9/1.0/1.1); six
            times the cost, smoother maps.
        batch_size: images per forward+backward pass when a batch is explained (memory bound only; maps are
            the same for any value).

    A batch of images is explained with one forward and one backward pass per ``batch_size`` images.
    """

    def __init__(self, target_layer: str | nn.Module | None = None, eigen_smooth: bool = False,
                 aug_smooth: bool = False, batch_size: int = 16) -> None:
        if target_layer is not None and not isinstance(target_layer, (str, nn.Module)):
            raise MethodError(f"target_layer must be a module name or a module; got {type(target_layer).__name__}")
        if int(batch_size) < 1:
            raise MethodError(f"batch_size must be at least 1; got {batch_size}")
        self.target_layer = target_layer
        self.eigen_smooth = bool(eigen_smooth)
        self.aug_smooth = bool(aug_smooth)
        self.batch_size = int(batch_size)

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """One weight per channel, ``(B,C)``, from activations and gradients ``(B,C,h,w)``."""
        raise NotImplementedError

    def _raw_maps(self, clf: Classifier, images: torch.Tensor, targets: torch.Tensor | None,
                  layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unnormalised CAMs ``(B,h,w)`` (after ReLU), the logits and the targets, from one forward and
        one backward pass. ``targets=None`` explains each image's predicted class, and so does a target of
        -1 for its image."""
        x = images.detach().clone().requires_grad_(True)
        # Always fp32: bf16 gradients are too coarse for CAMs (Grad-CAM++ on DeiT-Tiny kept r=0.28 with the
        # fp32 map in benchmarks/methods.py), and a CAM costs a single pass anyway.
        with torch.enable_grad(), capture_output(layer) as store, clf.using_precision("fp32"):
            logits = clf(x)
            act = store[-1] if store and isinstance(store[-1], torch.Tensor) else None
            if act is None or not act.requires_grad:
                raise MethodError(f"target layer {self.target_layer!r} gives {clf.name} no tensor on the way to "
                                  "the prediction; pick a convolutional or normalisation layer (or the default)")
            predicted = logits.detach().argmax(1)
            targets = predicted if targets is None else torch.where(targets < 0, predicted, targets)
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
                    run: RunControl = DEFAULT_RUN) -> Explanation:
        return self.explain_batch(clf, [image], [target], run)[0]

    def explain_batch(self, clf: Classifier, images: list[torch.Tensor], targets: list[int | str | None],
                      run: RunControl = DEFAULT_RUN) -> list[Explanation]:
        """One forward and one backward pass per chunk of ``batch_size`` same-sized images; each map equals
        the image's own explanation (to float rounding). The cost is shared equally within a chunk."""
        wanted = [-1 if t is None else clf.check_target(t) for t in targets]
        name = layer_name(clf, self.target_layer)
        layer = clf.model.get_submodule(name)
        settings = {**self.settings(), "target_layer": name} if isinstance(self.target_layer, nn.Module) \
            else self.settings()
        out: list[Explanation | None] = [None] * len(images)
        for chunk in same_size_chunks(images, self.batch_size):
            batch = torch.stack([single_image(clf, images[i]) for i in chunk])
            meter = CostMeter(clf)
            with meter.measure():
                # One pass gives the predictions, the clean probabilities and the maps together.
                chosen_in = torch.tensor([wanted[i] for i in chunk], device=clf.device)
                raw, logits, chosen = self._raw_maps(clf, batch, chosen_in, layer)
                norm = minmax(raw)
                if self.aug_smooth:
                    raw, norm = self.maps(clf, batch, chosen)
                saliency = resize_map(norm, tuple(batch.shape[-2:]))
            probs = logits.float().softmax(1)
            cost = share_cost(meter, len(chunk))
            for j, i in enumerate(chunk):
                target = int(chosen[j])
                out[i] = Explanation(
                    method=self.name, target=target, target_name=clf.class_name(target), model=clf.name,
                    saliency=saliency[j].cpu().numpy().astype(np.float32), score=float(probs[j, target]),
                    arrays={"grid": norm[j].cpu().numpy(), "raw": raw[j].cpu().numpy()},
                    cost=dict(cost), settings=settings,
                )
        return out  # type: ignore[return-value]

"""Attention rollout (Abnar & Zuidema, 2020): how much the CLS token draws on each patch, through all layers.

Two presets, because the papers we reproduce used two variants (SPEC section 0):

- ``vit-explain`` (the CartoonX reproduction, via jacobgil/vit-explain): heads fused by mean; in each
  layer the lowest ``discard_ratio`` (0.9) of all entries are zeroed except CLS->CLS; ``(A + I) / 2``;
  rows normalised to sum to one. (The original script divided by row sums along the wrong axis; that is a
  bug and is not reproduced.)
- ``moxi``: heads fused by mean; ``A + I``; divided by the matrix total; no discarding.

The map is the CLS row of the product ``A_L ... A_1`` over patch columns, scaled to a maximum of 1.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..errors import MethodError
from ..explanation import Explanation
from ..models import Classifier, TokenClassifier, resize_map
from .base import (
    DEFAULT_RUN,
    CostMeter,
    Explainer,
    RunControl,
    resolve_target,
    same_size_chunks,
    share_cost,
    single_image,
)

Preset = Literal["vit-explain", "moxi"]
PRESETS: dict[str, dict] = {
    "vit-explain": {"discard_ratio": 0.9, "halve_identity": True, "normalise": "rows"},
    "moxi": {"discard_ratio": 0.0, "halve_identity": False, "normalise": "total"},
}


def fuse_heads(attention: torch.Tensor, how: str) -> torch.Tensor:
    """``(B,heads,T,T)`` to ``(B,T,T)`` by mean, max or min over heads."""
    if how == "mean":
        return attention.mean(1)
    if how == "max":
        return attention.amax(1)
    if how == "min":
        return attention.amin(1)
    raise MethodError(f"unknown head fusion {how!r}; use mean, max or min")


def discard_lowest(fused: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero the lowest ``ratio`` of each matrix's entries, keeping CLS->CLS (flat index 0)."""
    if ratio <= 0:
        return fused
    B, T, _ = fused.shape
    flat = fused.reshape(B, T * T).clone()
    count = int(T * T * ratio)
    lowest = flat.topk(count, dim=1, largest=False).indices
    drop = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, lowest, True)
    drop[:, 0] = False
    return flat.masked_fill(drop, 0.0).reshape(B, T, T)


def rollout(attentions: list[torch.Tensor], discard_ratio: float, halve_identity: bool, normalise: str,
            head_fusion: str = "mean") -> torch.Tensor:
    """The rollout matrix ``(B,T,T)`` from per-layer attentions ``(B,heads,T,T)`` (first layer first)."""
    result = None
    for attention in attentions:
        a = discard_lowest(fuse_heads(attention.double(), head_fusion), discard_ratio)
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = (a + eye) / 2 if halve_identity else a + eye
        if normalise == "rows":
            a = a / a.sum(-1, keepdim=True)
        else:
            a = a / a.sum(dim=(-2, -1), keepdim=True)
        result = a if result is None else a @ result
    return result


#: Images per pass when a batch is explained (DeiT-Tiny keeps ~6 MB of attention maps per image).
CHUNK = 16


class AttentionRollout(Explainer):
    """Attention rollout for ViTs (a clear error for other models): how much the CLS token draws on each
    patch through all layers, from one forward pass (no gradients); the map does not depend on the target.

    Options:
        preset: ``vit-explain`` (default; the CartoonX reproduction's variant: 90% of each layer's
            attention discarded, ``(A+I)/2``, rows normalised) or ``moxi`` (``A+I`` over its total, nothing
            discarded); see the module docstring.
        head_fusion: how heads are fused per layer: ``mean`` (both presets), ``max`` or ``min``.
        discard_ratio: overrides the preset's share of lowest attention entries zeroed per layer, in [0,1).
    """

    name = "rollout"
    #: reads attention maps, which only a Vision Transformer has
    needs_token_model = True

    def __init__(self, preset: Preset = "vit-explain", head_fusion: str = "mean",
                 discard_ratio: float | None = None) -> None:
        if preset not in PRESETS:
            raise MethodError(f"unknown rollout preset {preset!r}; use {' or '.join(PRESETS)}")
        if discard_ratio is not None and not 0 <= discard_ratio < 1:
            raise MethodError(f"discard ratio must be in [0,1); got {discard_ratio}")
        self.preset = preset
        self.head_fusion = head_fusion
        self.discard_ratio = PRESETS[preset]["discard_ratio"] if discard_ratio is None else float(discard_ratio)

    def grid_maps(self, clf: TokenClassifier, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rollout maps at patch-grid resolution ``(B,gh,gw)``, each scaled to max 1, and the logits
        (both from the same single pass)."""
        p = PRESETS[self.preset]
        attentions, logits = clf.attentions(images, with_logits=True)
        matrix = rollout(attentions, self.discard_ratio, p["halve_identity"], p["normalise"], self.head_fusion)
        cls_row = matrix[:, 0, clf.num_prefix_tokens:].float()
        cls_row = cls_row / cls_row.amax(1, keepdim=True).clamp_min(1e-12)
        return cls_row.reshape(-1, *clf.grid), logits

    def explain_one(self, clf: Classifier, image: torch.Tensor, target: int | str | None = None,
                    run: RunControl = DEFAULT_RUN) -> Explanation:
        return self.explain_batch(clf, [image], [target], run)[0]

    def explain_batch(self, clf: Classifier, images: list[torch.Tensor], targets: list[int | str | None],
                      run: RunControl = DEFAULT_RUN) -> list[Explanation]:
        """One pass per chunk of :data:`CHUNK` same-sized images (attention maps of all layers are kept, so
        memory grows with the chunk); each map equals the image's own explanation."""
        if not isinstance(clf, TokenClassifier):
            raise MethodError(f"attention rollout needs a Vision Transformer; {clf.name} has no attention layers "
                              "(use gradcam or gradcampp for CNNs)")
        out: list[Explanation | None] = [None] * len(images)
        for chunk in same_size_chunks(images, CHUNK):
            batch = torch.stack([single_image(clf, images[i]) for i in chunk])
            meter = CostMeter(clf)
            with meter.measure():
                grids, logits = self.grid_maps(clf, batch)
                saliency = resize_map(grids, tuple(batch.shape[-2:]))
            cost = share_cost(meter, len(chunk))
            for j, i in enumerate(chunk):
                target, score = resolve_target(clf, logits[j:j + 1], targets[i])
                out[i] = Explanation(
                    method=self.name, target=target, target_name=clf.class_name(target), model=clf.name,
                    saliency=saliency[j].cpu().numpy().astype(np.float32), score=score,
                    arrays={"grid": grids[j].cpu().numpy()}, cost=dict(cost), settings=self.settings(),
                )
        return out  # type: ignore[return-value]

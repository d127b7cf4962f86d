"""Pixel RDE (MacDonald et al., 2019), as in the CartoonX reproduction (SPEC A.9).

The rate-distortion mask over pixels: one value per pixel shared by the colour channels, noise with the
image's own mean and std, obfuscations *not* clamped (as the reference), lambda_k 4. The explanation is
the mask itself. Presets as for :class:`~clearsight.methods.cartoonx.CartoonX`: ``paper`` (2000 steps,
lr 1e-3, 64 samples, fp32, init ones) and the faster default ``fast``, here ``FAST`` (480 steps) for every
model (CartoonX's longer ViT and CNN variants were measured on CartoonX only; ``benchmarks/rde.py --method
pixel-rde`` compares).
"""

from __future__ import annotations

import numpy as np

from ..models import Classifier
from ..parts.representations import Bands, PixelRepresentation, Representation
from .rde import Problem, RDEExplainer


class PixelRDE(RDEExplainer):
    """Pixel RDE; ``saliency`` is the ``(H,W)`` mask."""

    name = "pixel-rde"
    #: an RDE mask optimiser: lambda sweep, initialisations and checkpoints apply
    rde = True

    def make_representation(self) -> Representation:
        return PixelRepresentation(clamp=False)

    def default_lambda(self, clf: Classifier) -> float:
        return 4.0

    def render(self, problem: Problem, masks: Bands) -> tuple[np.ndarray, None]:
        return masks[0].detach().float().cpu().numpy(), None

"""CartoonX (Kolek et al., ECCV 2022; reproduction: Dubbeldam et al., ReScience C 2023).

A rate-distortion explanation in the wavelet domain: a sparse mask over the DWT coefficients (db3, five
levels, zero padding; low-pass band included) that keeps the model's probability of the target when the
rest is replaced by noise. Sparsity in the wavelet domain gives piece-wise smooth explanations, rendered
as a "cartoon": the grayscale image's coefficients times the mask, inverted (SPEC A.8).

Presets (see :mod:`clearsight.methods.rde`):

* ``preset="paper"``: the reproduction's reference exactly: 2000 Adam steps, lr 1e-3, 64 noise samples
  per step, fp32, init ones, lambda_k 20 for CNNs and 10 for ViTs. 128,000 forward+backward passes.
* ``preset="fast"`` (default): at most 960 steps of 5 noise samples for ViTs (800 for CNNs), Adam from
  lr 0.05 (0.1 for CNNs) with a cosine decay, a convergence test, bf16 autocast where the CPU has native
  bf16: at most 4,800 passes (4,000 for CNNs; 3.8% and 3.1% of the paper preset's). It is meant to end at
  an objective (label distortion on 256 fixed noise samples + lambda_k x mean mask) no higher than the
  paper preset's; ``benchmarks/rde.py`` measures both (figures: ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import MethodError
from ..models import Classifier
from ..parts.representations import Bands, Representation, WaveletRepresentation
from .rde import FAST_CNN, FAST_VIT, Problem, RDEExplainer, Schedule


class CartoonX(RDEExplainer):
    """CartoonX. ``render="gray"`` (reference) or ``"color"`` (the mask applied to each RGB channel)."""

    name = "cartoonx"
    #: an RDE mask optimiser: lambda sweep, initialisations and checkpoints apply
    rde = True

    def __init__(self, preset: str = "fast", lambda_k: float | None = None, steps: int | None = None,
                 lr: float | None = None, samples: int | None = None, init: str = "ones",
                 preoptimize: bool = False, foreground_mask: Any = None, distortion: str = "label",
                 noise: str = "adaptive", precision: str | None = None, seed: int = 0,
                 evaluate: bool = False, render: str = "gray", wave: str = "db3", levels: int = 5) -> None:
        super().__init__(preset, lambda_k, steps, lr, samples, init, preoptimize, foreground_mask,
                         distortion, noise, precision, seed, evaluate)
        if render not in ("gray", "color"):
            raise MethodError(f"unknown render {render!r}; use 'gray' (reference) or 'color'")
        self.render_mode = render
        self.wave = wave
        self.levels = levels

    def make_representation(self) -> Representation:
        return WaveletRepresentation(self.wave, self.levels, "zero", clamp=True)

    def default_lambda(self, clf: Classifier) -> float:
        """20 for CNNs, 10 for ViTs (the reproduction's choices, SPEC A.7)."""
        return 10.0 if clf.is_token_model else 20.0

    def fast_schedule(self, clf: Classifier | None) -> Schedule:
        """``FAST_VIT`` (960 steps) for ViTs and ``FAST_CNN`` (800 steps, lr 0.1) for CNNs: the base ``FAST``
        (480 steps, lr 0.05) loses to the paper preset on DeiT-Tiny's robin and on EfficientNet-Lite0's tench
        (``benchmarks/RESULTS.md``, "RDE presets")."""
        return FAST_VIT if clf is None or clf.is_token_model else FAST_CNN

    def render(self, problem: Problem, masks: Bands) -> tuple[np.ndarray, np.ndarray]:
        gray = cartoon_image(problem.representation, problem.image, masks, color=False)
        if self.render_mode == "color":
            return gray, cartoon_image(problem.representation, problem.image, masks, color=True)
        return gray, gray


@torch.no_grad()
def cartoon_image(representation: Representation, image: torch.Tensor, masks: Bands, color: bool = False) -> np.ndarray:
    """The CartoonX image: ``clamp(IDWT(s * DWT(g)), 0, 1)`` for the grayscale ``g = (R+G+B)/3`` (SPEC A.8).

    With ``color=True`` the mask is applied to each RGB channel instead; returns ``(H,W)`` or ``(H,W,3)``.
    """
    source = image if color else image.mean(dim=0, keepdim=True)
    bands = [b * m for b, m in zip(representation.analyze(source), masks)]
    out = representation.synthesize([b[None] for b in bands], (image.shape[-2], image.shape[-1]))[0]
    out = out.clamp(0, 1).float().cpu().numpy()
    return out.transpose(1, 2, 0) if color else out[0]

"""Where an RDE mask starts: ones, zeros, uniform noise, a foreground map (SPEC A.3, B.5), and the
pre-optimisation that lowers a mask of ones until the prediction flips (SPEC B.5).

Kept apart from the optimiser because the initialisation study (:mod:`clearsight.evaluation.initialisations`)
varies exactly this and nothing else.
"""

from __future__ import annotations

import torch

from ...errors import MethodError
from ...parts.representations import Bands
from .problem import Problem

INITS: tuple[str, ...] = ("ones", "zeros", "random", "foreground", "preoptimize")


def initial_masks(problem: Problem, init: str, seed: int, foreground: torch.Tensor | None = None,
                  background_value: float = 0.0) -> Bands:
    """Starting masks: all ones, all zeros, U[0,1) per entry, or a foreground map (SPEC A.3, B.5).

    ``foreground`` is a binary ``(H,W)`` map at the image size; each band gets it resized (bilinear) to its
    spatial size and re-binarised with ``> 0`` (a slight dilation, as the reference), foreground 1,
    background ``background_value``, the same for every orientation.
    """
    shapes = problem.mask_shapes()
    device = problem.image.device
    if init == "ones":
        return [torch.ones(s, device=device) for s in shapes]
    if init == "zeros":  # every band, unlike the reference (whose zeros init skipped all but one level)
        return [torch.zeros(s, device=device) for s in shapes]
    if init == "random":
        g = torch.Generator().manual_seed(seed + 1_000_003)
        return [torch.rand(s, generator=g).to(device) for s in shapes]
    if init == "foreground":
        if foreground is None:
            raise MethodError("init='foreground' needs a foreground map (GrabCut or a user-given mask)")
        return foreground_masks(foreground, shapes, background_value)
    raise MethodError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")


def foreground_masks(foreground: torch.Tensor, shapes: list[tuple[int, ...]], background_value: float) -> Bands:
    fg = foreground.float()[None, None]
    out = []
    for shape in shapes:
        small = torch.nn.functional.interpolate(fg, size=shape[-2:], mode="bilinear", align_corners=False)[0, 0]
        binary = (small > 0).float()
        band = background_value + (1.0 - background_value) * binary
        out.append(band.expand(shape).clone())
    return out


@torch.no_grad()
def preoptimize(problem: Problem, masks: Bands, foreground_like: Bands | None, seed: int,
                samples: int = 64) -> tuple[Bands, float]:
    """Lower the mask from 1 in steps of 0.01 until the prediction flips; restart one step above (B.5).

    The decision uses one fixed-seed batch of ``samples`` noise draws for every level (SPEC section 0):
    the prediction is the argmax of the batch-mean logits. Entries where ``foreground_like`` is 1 stay 1
    (foreground initialisation); the others take the level value. Returns the masks and the level used.
    """
    g = torch.Generator().manual_seed(seed + 2_000_003)
    noise = problem.noise.sample(problem.bands, samples, g)
    keep = foreground_like or [torch.zeros_like(m) for m in masks]
    chosen = 0.01
    for i in range(100, 0, -1):
        eps = i / 100
        trial = [torch.maximum(k, torch.full_like(k, eps)) for k in keep]
        logits = problem.clf(problem.obfuscations(trial, noise))
        if int(logits.float().mean(0).argmax()) != problem.target:
            chosen = min(eps + 0.01, 1.0)
            break
    return [torch.maximum(k, torch.full_like(k, chosen)) for k in keep], chosen

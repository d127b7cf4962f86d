"""Spatial penalties on explanation images, for mask objectives that regularise the rendered explanation.

WaveletX and ShearletX (Kolek et al., CVPR 2023) add to the RDE loss a penalty on the explanation image
itself (the grayscale photo's coefficients times the mask, synthesised and clamped to [0,1]): its mean
absolute value. Sparsity of the mask alone lets the optimiser keep many low-energy coefficients whose sum is a
grey haze; the spatial l1 term makes kept energy cost, so the explanation stays dark where nothing matters.
"""

from __future__ import annotations

import torch

from .errors import InputShapeError


def spatial_l1(explanation_image: torch.Tensor) -> torch.Tensor:
    """Mean absolute pixel value of an explanation image, differentiable.

    ``(H,W)`` and ``(C,H,W)`` give a scalar, ``(B,C,H,W)`` one value per image (the mean over channels and
    pixels). The reference (``l1spatial`` in waveletx.py/shearletx.py) sums these per-image means over the
    batch; with one image per explanation the two agree.
    """
    if not isinstance(explanation_image, torch.Tensor) or not explanation_image.is_floating_point():
        raise InputShapeError("spatial_l1 needs a float torch.Tensor image")
    if explanation_image.ndim in (2, 3):
        return explanation_image.abs().mean()
    if explanation_image.ndim == 4:
        return explanation_image.abs().flatten(1).mean(dim=1)
    raise InputShapeError(f"an explanation image has shape (H,W), (C,H,W) or (B,C,H,W); got "
                          f"{tuple(explanation_image.shape)}")


def spatial_l2(explanation_image: torch.Tensor) -> torch.Tensor:
    """Root mean square pixel value (the reference WaveletX's optional ``l2spatial`` term); shapes as
    :func:`spatial_l1`."""
    if not isinstance(explanation_image, torch.Tensor) or not explanation_image.is_floating_point():
        raise InputShapeError("spatial_l2 needs a float torch.Tensor image")
    if explanation_image.ndim in (2, 3):
        return explanation_image.pow(2).mean().sqrt()
    if explanation_image.ndim == 4:
        return explanation_image.pow(2).flatten(1).mean(dim=1).sqrt()
    raise InputShapeError(f"an explanation image has shape (H,W), (C,H,W) or (B,C,H,W); got "
                          f"{tuple(explanation_image.shape)}")


__all__ = ["spatial_l1", "spatial_l2"]

"""Grad-CAM (Selvaraju et al., 2017): channel weight = spatial mean of the class score's gradient."""

from __future__ import annotations

import torch

from .cam import CAMExplainer


class GradCAM(CAMExplainer):
    """Grad-CAM for CNNs (last convolutional stage) and ViTs (last block's first LayerNorm)."""

    name = "gradcam"

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return gradients.mean(dim=(2, 3))

"""Grad-CAM++ (Chattopadhyay et al., 2018): positive gradients weighted per position.

With the exponential of the score as in the paper, the higher derivatives reduce to powers of the first,
giving alpha = g^2 / (2 g^2 + sum(A) g^3) at each position; the channel weight sums alpha * relu(g).
"""

from __future__ import annotations

import torch

from .cam import CAMExplainer


class GradCAMPlusPlus(CAMExplainer):
    """Grad-CAM++ for CNNs and ViTs, on the same layers as Grad-CAM: channel weights from positive gradients
    weighted per position (better when several objects of the class are present). Same cost as Grad-CAM.

    Options:
        target_layer: module name or module object to read (default: a CNN's last convolutional stage, a
            ViT's last block's first LayerNorm).
        eigen_smooth: first principal component of the weighted channels instead of their sum.
        aug_smooth: average over 6 test-time augmentations (flip x brightness 0.9/1.0/1.1).
        batch_size: images per pass when explaining a batch (memory only; same maps).
    """

    name = "gradcampp"

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        g2, g3 = gradients.pow(2), gradients.pow(3)
        total = activations.sum(dim=(2, 3), keepdim=True)
        denom = 2 * g2 + total * g3
        alpha = torch.where(gradients != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)),
                            torch.zeros_like(g2))
        return (alpha * gradients.clamp_min(0)).sum(dim=(2, 3))

"""Grad-CAM (Selvaraju et al., 2017): channel weight = spatial mean of the class score's gradient."""

from __future__ import annotations

import torch

from .cam import CAMExplainer


class GradCAM(CAMExplainer):
    """Grad-CAM for CNNs (last convolutional stage) and ViTs (last block's first LayerNorm): each channel
    of the target layer weighted by the mean gradient of the class score over positions, summed, ReLU'd,
    scaled to [0,1] and resized to the image. One forward and one backward pass per image (or per batch).

    Options:
        target_layer: module name or module object to read (default: see above).
        eigen_smooth: first principal component of the weighted channels instead of their sum.
        aug_smooth: average over 6 test-time augmentations (flip x brightness 0.9/1.0/1.1).
        batch_size: images per pass when explaining a batch (memory only; same maps).

    Example: ``clearsight.explain(model, "photo.jpg", GradCAM(target_layer=model.layer4))``.
    """

    name = "gradcam"

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return gradients.mean(dim=(2, 3))

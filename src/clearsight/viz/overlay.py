"""Heatmap overlays and the standard explanation figure (photo | explanation, with class and probability)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..explanation import Explanation  # noqa: E402
from ..io import to_uint8  # noqa: E402


def as_uint8_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A ``(3,H,W)`` tensor in [0,1] or an ``(H,W,3)`` array as ``(H,W,3)`` uint8."""
    if isinstance(image, torch.Tensor):
        return to_uint8(image)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr * 255), 0, 255).astype(np.uint8)
    return arr


def overlay(image: torch.Tensor | np.ndarray, saliency: np.ndarray, cmap: str = "jet",
            alpha: float = 0.5) -> np.ndarray:
    """Blend a colour-mapped saliency map (scaled to [0,1] by its range) over the photo; uint8 (H,W,3)."""
    rgb = as_uint8_image(image).astype(np.float32) / 255.0
    sal = np.asarray(saliency, dtype=np.float32)
    span = float(sal.max() - sal.min())
    sal = (sal - sal.min()) / span if span > 0 else np.zeros_like(sal)
    heat = plt.get_cmap(cmap)(sal)[..., :3]
    return np.clip(np.round(((1 - alpha) * rgb + alpha * heat) * 255), 0, 255).astype(np.uint8)


def explanation_figure(image: torch.Tensor | np.ndarray, explanation: Explanation,
                       predicted: tuple[str, float] | None = None, panel: np.ndarray | None = None,
                       panel_cmap: str | None = None, panel_title: str | None = None) -> plt.Figure:
    """Photo on the left, the explanation on the right, class names and probabilities in the titles.

    ``panel`` replaces the default right-hand panel (the saliency overlay), e.g. by a CartoonX cartoon
    shown with ``panel_cmap="copper"``.
    """
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.3))
    axes[0].imshow(as_uint8_image(image))
    title = "input"
    if predicted is not None:
        title = f"predicted: {predicted[0]} ({predicted[1]:.1%})"
    axes[0].set_title(title, fontsize=10)
    if panel is None:
        axes[1].imshow(overlay(image, explanation.saliency))
    else:
        axes[1].imshow(panel, cmap=panel_cmap, vmin=0, vmax=1 if panel.dtype != np.uint8 else 255)
    prob = f" ({explanation.score:.1%})" if explanation.score is not None else ""
    axes[1].set_title(panel_title or f"{explanation.method}: {explanation.target_name}{prob}", fontsize=10)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a figure as PNG (parent folders created) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path

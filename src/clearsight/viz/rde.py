"""Figures for CartoonX and Pixel RDE: the explanation next to the photo, and the loss curves.

The reproduction showed both explanations with matplotlib's "copper" colour map on [0,1] (SPEC A.8); a
colour cartoon (``render="color"``) is shown as an RGB image.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..explanation import Explanation  # noqa: E402
from .overlay import explanation_figure  # noqa: E402


def rde_panel(explanation: Explanation) -> np.ndarray:
    """What the figure shows: the cartoon (CartoonX) or the mask (Pixel RDE), values in [0,1]."""
    panel = explanation.cartoon if explanation.cartoon is not None else explanation.saliency
    return np.clip(np.asarray(panel, dtype=np.float32), 0.0, 1.0)


def rde_figure(image: torch.Tensor | np.ndarray, explanation: Explanation,
               predicted: tuple[str, float] | None = None) -> plt.Figure:
    """Photo | cartoon or mask (copper colour map), titled with the class and the final mean mask."""
    panel = rde_panel(explanation)
    label = "cartoon" if explanation.method == "cartoonx" else "mask"
    masks = [np.asarray(m, dtype=np.float64) for m in explanation.mask.values()]
    count = sum(m.size for m in masks)
    kept = f", mean mask {sum(float(m.sum()) for m in masks) / count:.3f}" if count else ""
    title = f"{explanation.method} {label}: {explanation.target_name}{kept}"
    return explanation_figure(image, explanation, predicted, panel=panel,
                              panel_cmap=None if panel.ndim == 3 else "copper", panel_title=title)


def loss_figure(explanation: Explanation) -> plt.Figure:
    """Loss, distortion and lambda_k x sparsity per optimisation step (log scale), as the reproduction logged."""
    hist = explanation.history
    if "loss" not in hist or not len(hist["loss"]):
        raise ValueError("this explanation has no loss history")
    lam = float(explanation.settings.get("lambda_k", 1.0))
    return loss_curves_figure({"loss": hist["loss"], "distortion": hist["distortion"],
                               f"{lam:g} x sparsity": lam * np.asarray(hist["sparsity"])},
                              f"{explanation.method}: {explanation.target_name}")


def loss_curves_figure(curves: Mapping[str, np.ndarray], title: str) -> plt.Figure:
    """One line per named curve against the optimisation step, on a log scale."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(np.arange(len(values)), values, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    return fig


def save_loss_curves_figure(curves: Mapping[str, np.ndarray], path: str | os.PathLike, title: str) -> Path:
    """Draw and save :func:`loss_curves_figure` as PNG."""
    from .overlay import save_figure

    return save_figure(loss_curves_figure(curves, title), path)

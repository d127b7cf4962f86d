"""Figures for CartoonX and Pixel RDE: the explanation next to the photo, and the loss curves.

The reproduction showed both explanations with matplotlib's "copper" colour map on [0,1] (SPEC A.8); a
colour cartoon (``render="color"``) is shown as an RGB image.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from ..explanation import Explanation
from .overlay import DEFAULT_DPI, explanation_figure, figure_title, new_figure, save_figure


def rde_panel(explanation: Explanation) -> np.ndarray:
    """What the figure shows: the cartoon (CartoonX) or the mask (Pixel RDE), values in [0,1]."""
    panel = explanation.cartoon if explanation.cartoon is not None else explanation.saliency
    return np.clip(np.asarray(panel, dtype=np.float32), 0.0, 1.0)


def rde_figure(image: torch.Tensor | np.ndarray, explanation: Explanation,
               predicted: tuple[str, float] | None = None) -> Figure:
    """Photo | cartoon or mask (copper colour map on [0,1], with a colour bar), titled with model, class,
    probability and settings, and the final mean mask."""
    panel = rde_panel(explanation)
    label = "cartoon" if explanation.method == "cartoonx" else "mask"
    masks = [np.asarray(m, dtype=np.float64) for m in explanation.mask.values()]
    count = sum(m.size for m in masks)
    kept = f", mean mask {sum(float(m.sum()) for m in masks) / count:.3f}" if count else ""
    prob = f" ({explanation.score:.1%})" if explanation.score is not None else ""
    title = f"{label}: {explanation.target_name}{prob}{kept}"
    bar = "cartoon intensity" if label == "cartoon" else "mask (1 = pixel kept, 0 = replaced by noise)"
    return explanation_figure(image, explanation, predicted, panel=panel,
                              panel_cmap=None if panel.ndim == 3 else "copper", panel_title=title, panel_label=bar)


def loss_figure(explanation: Explanation) -> Figure:
    """Loss, distortion and lambda_k x sparsity per optimisation step (log scale), as the reproduction logged."""
    hist = explanation.history
    if "loss" not in hist or not len(hist["loss"]):
        raise ValueError("this explanation has no loss history")
    lam = float(explanation.settings.get("lambda_k", 1.0))
    return loss_curves_figure({"loss": hist["loss"], "distortion": hist["distortion"],
                               f"{lam:g} x sparsity": lam * np.asarray(hist["sparsity"])},
                              figure_title(explanation, width=80))


def loss_curves_figure(curves: Mapping[str, np.ndarray], title: str) -> Figure:
    """One line per named curve against the optimisation step, on a log scale."""
    fig = new_figure(6.5, 4.4)
    ax = fig.subplots()
    for name, values in curves.items():
        ax.plot(np.arange(len(values)), values, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("optimisation step")
    ax.set_ylabel("value (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return fig


def save_loss_curves_figure(curves: Mapping[str, np.ndarray], path: str | os.PathLike, title: str,
                            dpi: int = DEFAULT_DPI, format: str | None = None) -> Path:
    """Draw and save :func:`loss_curves_figure` (format from ``format`` or the suffix: png, svg, pdf)."""
    return save_figure(loss_curves_figure(curves, title), path, dpi=dpi, format=format)

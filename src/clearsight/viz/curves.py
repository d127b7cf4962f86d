"""Curve plots, one line per method: insertion / deletion (accuracy or score against the fraction of patches) and
rate-distortion curves (distortion against the fraction of components)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..wording import counted
from .overlay import DEFAULT_DPI, new_figure, save_figure


def curve_figure(curves: Mapping[str, np.ndarray], curve: str, aucs: Mapping[str, float] | None = None,
                 ylabel: str = "top-1 accuracy", title: str | None = None, xlabel: str | None = None) -> Figure:
    """One line per method over x = 0..100 % (by default: of patches inserted or deleted, after ``curve``)."""
    fig = new_figure(6.5, 4.5)
    ax = fig.subplots()
    for name, y in curves.items():
        y = np.asarray(y, dtype=float)
        x = np.linspace(0, 100, len(y))
        label = name if not aucs or name not in aucs else f"{name} (AUC {aucs[name]:.3f})"
        ax.plot(x, y, lw=1.6, label=label)
    ax.set_xlabel(xlabel or f"% of patches {'inserted' if curve == 'insertion' else 'deleted'}")
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{curve} curves", fontsize=10)
    return fig


def save_curve_figure(curves: Mapping[str, np.ndarray], curve: str, path: str | os.PathLike,
                      aucs: Mapping[str, float] | None = None, ylabel: str = "top-1 accuracy",
                      xlabel: str | None = None, title: str | None = None, dpi: int = DEFAULT_DPI,
                      format: str | None = None) -> Path:
    """Draw and save :func:`curve_figure` (format from ``format`` or the suffix: png, svg, pdf)."""
    return save_figure(curve_figure(curves, curve, aucs, ylabel, title=title, xlabel=xlabel), path, dpi=dpi,
                       format=format)


def save_lambda_sweep_figure(lambdas: list[float], distortion: Mapping[str, tuple[np.ndarray, np.ndarray]],
                             sparsity: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike,
                             images: int | None = None, dpi: int = DEFAULT_DPI, format: str | None = None) -> Path:
    """Distortion and non-sparsity (mean +- std over images) against lambda_k on a log2 axis, one line per
    method: the reproduction's Fig. 3 right. Neither quantity can be negative, so a bar's lower half stops at 0:
    over a few photos one collapsed mask makes the std larger than the mean, and a bar below 0 would draw values
    no photo can have."""
    fig = new_figure(9.5, 4.0)
    axes = fig.subplots(1, 2)
    for ax, (quantity, values) in zip(axes, (("distortion (l2 of softmax)", distortion),
                                             ("non-sparsity ||s||_1 / k", sparsity))):
        for name, (mean, std) in values.items():
            mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
            ax.errorbar(lambdas, mean, yerr=[np.minimum(std, np.maximum(mean, 0.0)), std], marker="o", ms=4,
                        capsize=3, lw=1.4, label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("lambda_k")
        ax.set_ylabel(quantity)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    over = "" if images is None else ", " + counted(images, "image")
    fig.suptitle(f"lambda sweep{over} (mean, bars: std over images, cut at 0)", fontsize=10)
    return save_figure(fig, path, dpi=dpi, format=format)

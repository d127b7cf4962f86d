"""Figure grids of the reproduced papers: photos x methods heatmaps (MoXI Fig. 4/5), photo | CartoonX | Pixel
RDE rows (CartoonX Fig. 1-2) and AUC against the number of classes (MoXI Fig. 7).

Drawn on plain :class:`matplotlib.figure.Figure` objects (no pyplot, so the user's backend is left alone) and
written atomically.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..explanation import atomic_write


def _as_rgb(image: Any) -> np.ndarray:
    array = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] == 3:
        array = array.transpose(1, 2, 0)
    return np.clip(array, 0, 1)


def _save(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path


def _save_image_grid(fig: Figure, axes: np.ndarray, title: str, path: str | Path) -> Path:
    """A grid of pictures: no ticks on any panel, the title above, written atomically."""
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def save_heatmap_grid(photos: Sequence[Any], heat: Mapping[str, Sequence[np.ndarray]], path: str | Path,
                      title: str = "", row_labels: Sequence[str] | None = None,
                      steps: Mapping[str, Sequence[int]] | None = None) -> Path:
    """Rows: photos; columns: the photo, then each method's patch heat grid (nearest-neighbour, so the
    patch grid stays visible) over it, earliest patches red; ``steps[method][row]`` is written under each."""
    methods = list(heat)
    rows, cols = len(photos), len(methods) + 1
    fig = Figure(figsize=(2.2 * cols, 2.3 * max(rows, 1) + 0.4))
    axes = fig.subplots(max(rows, 1), cols, squeeze=False)
    for r, photo in enumerate(photos):
        rgb = _as_rgb(photo)
        axes[r][0].imshow(rgb)
        axes[r][0].set_ylabel((row_labels or [""] * rows)[r][:28], fontsize=7)
        for c, method in enumerate(methods, start=1):
            ax = axes[r][c]
            ax.imshow(rgb)
            grids = heat[method]
            if r < len(grids):
                grid = np.asarray(grids[r], dtype=np.float32)
                masked = np.ma.masked_where(grid <= 0, grid)
                ax.imshow(masked, cmap="jet", vmin=0, vmax=1, alpha=0.6, interpolation="nearest",
                          extent=(0, rgb.shape[1], rgb.shape[0], 0))
                if steps is not None and method in steps and r < len(steps[method]):
                    n = steps[method][r]
                    ax.set_xlabel(f"{n} patch{'' if n == 1 else 'es'}", fontsize=7)
            if r == 0:
                ax.set_title(method, fontsize=9)
    return _save_image_grid(fig, axes, title, path)


def save_qualitative_grid(rows: Sequence[tuple[str, Mapping[str, Any]]], path: str | Path, title: str = "") -> Path:
    """Rows of (name, {"photo": tensor, "cartoonx": Explanation, "pixel-rde": Explanation}): the photo, the
    CartoonX cartoon (copper) and the Pixel RDE mask."""
    fig = Figure(figsize=(7.5, 2.5 * max(len(rows), 1) + 0.4))
    axes = fig.subplots(max(len(rows), 1), 3, squeeze=False)
    for r, (name, row) in enumerate(rows):
        axes[r][0].imshow(_as_rgb(row["photo"]))
        axes[r][0].set_ylabel(name[:28], fontsize=7)
        cartoon = row["cartoonx"]
        panel = cartoon.cartoon if cartoon.cartoon is not None else cartoon.saliency
        axes[r][1].imshow(np.asarray(panel).squeeze(), cmap="copper")
        axes[r][2].imshow(np.asarray(row["pixel-rde"].saliency), cmap="copper")
        for c, label in enumerate(("photo", "CartoonX", "Pixel RDE")):
            if r == 0:
                axes[r][c].set_title(label, fontsize=9)
    return _save_image_grid(fig, axes, title, path)


def save_consistency_figure(summary: Mapping[str, Any], path: str | Path, title: str = "") -> Path:
    """Insertion and deletion AUC of each method against the number of classes (log axis)."""
    classes = [int(c) for c in summary["classes"]]
    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2)
    for ax, curve in zip(axes, ("insertion", "deletion")):
        for method, per in summary.get(curve, {}).get("auc", {}).items():
            ax.plot(classes, [per[str(k)] for k in classes], marker="o", label=method)
        ax.set_xscale("log")
        ax.set_xlabel("classes the model chooses from")
        ax.set_ylabel(f"{curve} AUC ({'higher' if curve == 'insertion' else 'lower'} is better)")
        ax.set_title(curve, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)

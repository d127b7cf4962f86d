"""Heatmap overlays, the standard explanation figure (photo | explanation with a colour bar) and saving.

Figures are plain :class:`matplotlib.figure.Figure` objects, never pyplot ones: nothing here selects or
switches matplotlib's backend (the user's notebook or GUI keeps its own), and saving goes through the
format's own canvas (Agg for PNG, the SVG and PDF writers for vector files), so no backend is needed at all.

Colour maps follow the values: a map with both signs (Shapley values) gets a diverging map centred on 0, so
white means "no effect" and red / blue the two directions; a one-signed map gets a perceptually uniform
sequential map. Titles name the method, model, explained class with its probability and the settings that
decide the picture, so a figure copied out of its folder still says what it shows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ..errors import ClearsightError
from ..explanation import Explanation, atomic_write
from ..io import to_uint8

#: the file formats :func:`save_figure` writes
FORMATS = ("png", "svg", "pdf")
#: PNG resolution by default: sharp titles at the figures' 8-12 inch widths
DEFAULT_DPI = 150
#: sequential map for one-signed saliency, diverging map (centred on 0) for signed values
SEQUENTIAL_CMAP = "inferno"
DIVERGING_CMAP = "RdBu_r"
#: values of ``settings["mode"]`` that name the method's direction (MoXI); other methods' "mode" is their own
METHOD_MODES = ("insertion", "deletion")
#: the settings a title shows, in this order, when an explanation has them
TITLE_SETTINGS = ("mode", "preset", "score", "absence", "interactions", "tau", "rounds", "sampling", "steps",
                  "samples", "lambda_k", "lr", "init", "distortion", "patch_size", "grid", "head_fusion",
                  "discard_ratio", "target_layer", "render_mode", "wave", "levels", "seed")


class FigureFormatError(ClearsightError):
    """A figure was asked for in a format clearsight does not write."""


def new_figure(width: float, height: float) -> Figure:
    """A figure detached from pyplot (so no backend is chosen or switched), laid out with colour bars in mind."""
    return Figure(figsize=(width, height), layout="constrained")


def as_uint8_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A ``(3,H,W)`` tensor in [0,1] or an ``(H,W,3)`` array as ``(H,W,3)`` uint8."""
    if isinstance(image, torch.Tensor):
        return to_uint8(image)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr * 255), 0, 255).astype(np.uint8)
    return arr


def saliency_norm(saliency: np.ndarray) -> tuple[str, Normalize]:
    """The colour map and value range for a map: diverging and symmetric about 0 when it has both signs (so 0
    is always the neutral colour), sequential from 0 (or its minimum) to its maximum otherwise."""
    sal = np.asarray(saliency, dtype=np.float64)
    finite = sal[np.isfinite(sal)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if lo < 0:  # both signs (or only negative ones): 0 must stay the neutral middle colour
        m = max(abs(lo), abs(hi))
        return DIVERGING_CMAP, Normalize(-m, m)
    return SEQUENTIAL_CMAP, Normalize(0.0, hi if hi > 0 else 1.0)


def overlay(image: torch.Tensor | np.ndarray, saliency: np.ndarray, cmap: str | None = None,
            alpha: float = 0.5, norm: Normalize | None = None) -> np.ndarray:
    """Blend a colour-mapped saliency map over the photo; uint8 ``(H,W,3)``.

    The map and range default to :func:`saliency_norm`'s, so a signed map keeps 0 at the neutral colour.
    """
    rgb = as_uint8_image(image).astype(np.float32) / 255.0
    auto_cmap, auto_norm = saliency_norm(saliency)
    norm = norm or auto_norm
    heat = matplotlib.colormaps[cmap or auto_cmap](norm(np.asarray(saliency, dtype=np.float64)))[..., :3]
    return np.clip(np.round(((1 - alpha) * rgb + alpha * heat) * 255), 0, 255).astype(np.uint8)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
        return "x".join(f"{v:g}" for v in value)
    return str(value)


def key_settings(explanation: Explanation, skip: tuple[str, ...] = ()) -> str:
    """The settings that decide the picture (``TITLE_SETTINGS`` that are set), as ``name value`` pairs."""
    settings = explanation.settings or {}
    items = [f"{k if k == 'lambda_k' else k.replace('_', ' ')} {_format_value(settings[k])}" for k in TITLE_SETTINGS
             if k not in skip and settings.get(k) is not None and not isinstance(settings[k], dict)]
    return ", ".join(items)


def figure_title(explanation: Explanation, width: int = 110) -> str:
    """``method (mode) on model: class (p=..)`` and, wrapped below, the key settings."""
    settings = explanation.settings or {}
    mode = settings.get("mode") if settings.get("mode") in METHOD_MODES else None  # CartoonX's is the wavelet's
    method = explanation.method + (f" {mode}" if mode else "")
    head = f"{method} on {explanation.model or 'unknown model'}: {explanation.target_name or explanation.target}"
    if explanation.score is not None:
        head += f" (p={explanation.score:.1%})"
    extra = key_settings(explanation, skip=("mode",) if mode else ())
    lines = [head]
    if extra:
        lines.append("")
        for item in extra.split(", "):  # wrap between settings, never inside one ("levels | 5")
            joined = f"{lines[-1]}, {item}" if lines[-1] else item
            if lines[-1] and len(joined) > width:
                lines.append(item)
            else:
                lines[-1] = joined
    return "\n".join(lines)


def _photo_panel(ax, image: torch.Tensor | np.ndarray, predicted: tuple[str, float] | None) -> None:
    ax.imshow(as_uint8_image(image))
    ax.set_title("input" if predicted is None else f"predicted: {predicted[0]} ({predicted[1]:.1%})", fontsize=10)
    ax.set_axis_off()


def explanation_figure(image: torch.Tensor | np.ndarray, explanation: Explanation,
                       predicted: tuple[str, float] | None = None, panel: np.ndarray | None = None,
                       panel_cmap: str | None = None, panel_title: str | None = None,
                       panel_label: str | None = None) -> Figure:
    """Photo on the left, the explanation on the right with a colour bar, the figure titled by
    :func:`figure_title`.

    ``panel`` replaces the default right-hand panel (the saliency over the photo), e.g. by a CartoonX cartoon
    on [0,1] shown with ``panel_cmap="copper"``; an RGB panel gets no colour bar.
    """
    fig = new_figure(9.5, 4.6)
    axes = fig.subplots(1, 2)
    _photo_panel(axes[0], image, predicted)
    ax = axes[1]
    if panel is None:
        cmap, norm = saliency_norm(explanation.saliency)
        ax.imshow(as_uint8_image(image))
        mappable = ax.imshow(explanation.saliency, cmap=cmap, norm=norm, alpha=0.55, interpolation="nearest")
        signed = cmap == DIVERGING_CMAP
        label = panel_label or ("attribution (red: for the class, blue: against)" if signed else "saliency")
    elif panel.ndim == 3:
        mappable = None
        ax.imshow(panel)
    else:
        vmax = 255 if panel.dtype == np.uint8 else 1
        mappable = ax.imshow(panel, cmap=panel_cmap, vmin=0, vmax=vmax, interpolation="nearest")
        label = panel_label or "value"
    if mappable is not None:
        fig.colorbar(mappable, ax=ax, shrink=0.85, label=label)
    prob = f" ({explanation.score:.1%})" if explanation.score is not None else ""
    ax.set_title(panel_title or f"explained: {explanation.target_name}{prob}", fontsize=10)
    ax.set_axis_off()
    fig.suptitle(figure_title(explanation), fontsize=10)
    return fig


def figure_path(path: str | os.PathLike, format: str | None = None) -> tuple[Path, str]:
    """The path and format a figure is written to: ``format`` when given (the suffix becomes ``.format``),
    else the path's suffix, else PNG. Unknown formats are a user mistake, named with the ones available."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if format is not None:
        fmt = str(format).lower().lstrip(".")
        if fmt not in FORMATS:
            raise FigureFormatError(f"figure format {format!r} is not one of {', '.join(FORMATS)}")
        return (path if suffix == fmt else path.with_name(path.name + f".{fmt}") if suffix not in FORMATS
                else path.with_suffix(f".{fmt}")), fmt
    if not suffix:
        return path.with_name(path.name + ".png"), "png"
    if suffix not in FORMATS:
        raise FigureFormatError(f"cannot write a figure to {path.name}: the suffix must be one of "
                                f"{', '.join('.' + f for f in FORMATS)}")
    return path, suffix


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = DEFAULT_DPI, format: str | None = None) -> Path:
    """Write ``fig`` as PNG, SVG or PDF (from ``format``, else the path's suffix) and return the path written.

    The file is written atomically (a temporary file in the same folder, then renamed), so a reader never sees
    half a figure and a symbolic link planted at ``path`` is replaced, never followed. Parent folders are
    created. ``dpi`` sets the PNG resolution (and that of pictures embedded in vector files).
    """
    if not isinstance(dpi, (int, float)) or isinstance(dpi, bool) or not 10 <= dpi <= 2400:
        raise FigureFormatError(f"figure dpi must be a number between 10 and 2400; got {dpi!r}")
    path, fmt = figure_path(path, format)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)  # same figure, same bytes
    with matplotlib.rc_context({"svg.hashsalt": "clearsight"}):  # stable SVG ids; the user's rcParams restored
        atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi, bbox_inches="tight", metadata=meta))
    if "matplotlib.pyplot" in sys.modules and getattr(fig.canvas, "manager", None) is not None:
        sys.modules["matplotlib.pyplot"].close(fig)  # a pyplot figure passed in: release it as before
    return path

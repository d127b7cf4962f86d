"""Figures: overlays, explanation figures, curves. Matplotlib runs headless (Agg)."""

from .overlay import explanation_figure, overlay, save_figure

__all__ = ["explanation_figure", "overlay", "save_figure"]

"""Figures: overlays, explanation figures, curves; plain Figure objects, so the matplotlib backend is left alone."""

from .overlay import FORMATS, FigureFormatError, explanation_figure, figure_title, overlay, save_figure

__all__ = ["FORMATS", "FigureFormatError", "explanation_figure", "figure_title", "overlay", "save_figure"]

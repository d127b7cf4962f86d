"""MoXI's order heatmap (SPEC C.9): the patches a greedy run used, earliest hottest, over the photo.

The heat grid itself is computed by the method (:func:`clearsight.methods.moxi.order_heat`, kept as
``Explanation.arrays["grid"]``: ``c - t`` for the t-th of the c patches used, scaled to max 1, and resized
bilinearly into ``saliency``); this module only draws it, next to the score after every step so that the
stopping point is visible.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..explanation import Explanation  # noqa: E402
from .overlay import as_uint8_image, overlay  # noqa: E402


def _score_panel(ax: plt.Axes, explanation: Explanation) -> None:
    scores = np.asarray(explanation.order_scores if explanation.order_scores is not None else [])
    steps = np.arange(1, len(scores) + 1)
    ax.plot(steps, scores, lw=1.5, color="tab:blue")
    lo, hi = explanation.settings.get("highlighted", [0, 0])
    if hi > lo:
        ax.axvspan(lo + 0.5, hi + 0.5, color="tab:orange", alpha=0.2, label="highlighted")
        ax.axvline(hi, color="tab:orange", lw=1)
    score = explanation.settings.get("score", "score")
    ax.set_xlabel("patches " + ("inserted" if explanation.settings.get("mode") == "insertion" else "deleted"))
    ax.set_ylabel(str(score))
    ax.set_title("score after each step", fontsize=10)
    ax.grid(alpha=0.3)


def order_figure(image: torch.Tensor | np.ndarray, explanation: Explanation,
                 predicted: tuple[str, float] | None = None) -> plt.Figure:
    """Photo | order heatmap overlay (JET, as the reference) | score after every step."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3), gridspec_kw={"width_ratios": [1, 1, 1.1]})
    axes[0].imshow(as_uint8_image(image))
    axes[0].set_title("input" if predicted is None else f"predicted: {predicted[0]} ({predicted[1]:.1%})",
                      fontsize=10)
    axes[1].imshow(overlay(image, explanation.saliency, cmap="jet", alpha=0.5))
    lo, hi = explanation.settings.get("highlighted", [0, 0])
    mode = explanation.settings.get("mode", "")
    axes[1].set_title(f"{explanation.method} {mode}: {explanation.target_name}, {hi - lo} patches", fontsize=10)
    for ax in axes[:2]:
        ax.axis("off")
    _score_panel(axes[2], explanation)
    fig.tight_layout()
    return fig

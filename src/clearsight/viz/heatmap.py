"""MoXI's order figure (SPEC C.9): the patches a greedy run used, over the photo, and the score after every step.

MoXI explains with whole patches, so the heatmap is drawn patch by patch (nearest neighbour, never smoothed),
with the patch grid visible and each used patch coloured by the step that chose it (1 = first). The titles say
how many patches were actually inserted or deleted: for class-discriminative deletion (a target other than the
prediction) that is both phases, the patches deleted to make the target the prediction and then those deleted
to take it away again, and only the second group is coloured (the first is shaded grey).
"""

from __future__ import annotations

import matplotlib
import numpy as np
import torch
from matplotlib.patches import Patch

from ..explanation import Explanation
from .overlay import _photo_panel, as_uint8_image, figure_title, new_figure

#: colour of the coloured patches by step: bright (first) to dark (last), readable over a photo
ORDER_CMAP = "plasma_r"


def _steps(explanation: Explanation) -> tuple[int, int, int]:
    """(first, last, done): the highlighted step range and how many steps the method actually took."""
    settings = explanation.settings or {}
    lo, hi = (int(v) for v in settings.get("highlighted", [0, 0]))
    n = len(explanation.order) if explanation.order is not None else hi
    stop = settings.get("stop_step")
    done = int(stop) if stop is not None else (hi if hi > 0 else n)
    return lo, hi, max(done, hi)


def step_grid(explanation: Explanation) -> tuple[np.ndarray, np.ndarray]:
    """Per patch (at grid resolution): the step within the highlighted range that chose it (1 = first, NaN =
    not highlighted), and a mask of patches used before that range (class-discriminative deletion's phase 1)."""
    settings = explanation.settings or {}
    rows, cols = (int(v) for v in settings.get("grid", np.shape(explanation.arrays.get("grid", np.zeros((1, 1))))))
    lo, hi, _ = _steps(explanation)
    step = np.full(rows * cols, np.nan)
    before = np.zeros(rows * cols, dtype=bool)
    if explanation.order is not None:
        order = np.asarray(explanation.order, dtype=np.int64)
        step[order[lo:hi]] = np.arange(1, hi - lo + 1)
        before[order[:lo]] = True
    elif "grid" in explanation.arrays:  # only the heat grid: recover the steps from ``used - t`` scaled to max 1
        heat = np.asarray(explanation.arrays["grid"], dtype=np.float64).ravel()
        used = hi - lo
        step = np.where(heat > 0, np.round(used - heat * used + 1), np.nan)
    return step.reshape(rows, cols), before.reshape(rows, cols)


def _verb(explanation: Explanation) -> str:
    return "inserted" if (explanation.settings or {}).get("mode") == "insertion" else "deleted"


def order_title(explanation: Explanation) -> str:
    """What the heatmap shows, with the number of patches actually inserted / deleted."""
    lo, hi, done = _steps(explanation)
    target = explanation.target_name or str(explanation.target)
    verb = _verb(explanation)
    success = (explanation.settings or {}).get("success")
    probs = explanation.arrays.get("probabilities")
    after = ""
    if probs is not None and 0 < done <= len(probs):
        after = f"; p({target}) after: {float(np.asarray(probs)[done - 1]):.1%}"
    if lo > 0 and hi == lo:
        return f"{done} patches deleted without making {target} the prediction:\nno patch explains it{after}"
    if lo > 0:
        return (f"{done} patches deleted: {lo} to make {target} the prediction,\nthen {hi - lo} (coloured) "
                f"to take it away{after}")
    if success is False:
        return f"stop rule never met: {done} patches {verb} (coloured){after}"
    outcome = f"{target} predicted" if verb == "inserted" else f"{target} no longer predicted"
    return f"{done} patches {verb} until {outcome}{after}"


def draw_order(ax, image: torch.Tensor | np.ndarray, explanation: Explanation):
    """The photo with every used patch coloured by its step (nearest neighbour) and the patch grid drawn;
    returns the colour mapping (for a colour bar) and the legend handles."""
    photo = as_uint8_image(image)
    h, w = photo.shape[:2]
    step, before = step_grid(explanation)
    rows, cols = step.shape
    ax.imshow(photo)
    used = int(np.nanmax(step)) if np.isfinite(step).any() else 0
    cmap = matplotlib.colormaps[ORDER_CMAP].resampled(max(used, 1))
    mappable = ax.imshow(np.ma.masked_invalid(step), cmap=cmap, vmin=0.5, vmax=max(used, 1) + 0.5, alpha=0.7,
                         extent=(0, w, h, 0), interpolation="nearest")
    handles = []
    if before.any():
        grey = np.ma.masked_where(~before, np.ones_like(step))
        ax.imshow(grey, cmap=matplotlib.colors.ListedColormap(["0.35"]), vmin=0, vmax=1, alpha=0.7,
                  extent=(0, w, h, 0), interpolation="nearest")
        purpose = "to make" if used else "trying (and failing) to make"
        handles.append(Patch(color="0.35", alpha=0.7, label=f"deleted first ({int(before.sum())}), {purpose} "
                                                          f"{explanation.target_name or explanation.target} "
                                                          "the prediction"))
    ax.vlines(np.arange(1, cols) * w / cols, 0, h, colors="white", lw=0.4, alpha=0.6)
    ax.hlines(np.arange(1, rows) * h / rows, 0, w, colors="white", lw=0.4, alpha=0.6)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_axis_off()
    return mappable, used, handles


def _score_panel(ax, explanation: Explanation) -> None:
    """The method's score after every step (phase by phase), the target's probability on a second axis, the
    highlighted steps as a labelled band and the stop step as a line, all in one legend."""
    scores = np.asarray(explanation.order_scores if explanation.order_scores is not None else [], dtype=float)
    settings = explanation.settings or {}
    target = explanation.target_name or str(explanation.target)
    steps = np.arange(1, len(scores) + 1)
    lo, hi, done = _steps(explanation)
    phase = np.asarray(explanation.arrays.get("phase", np.full(len(scores), 2 if lo else 1)))
    score = settings.get("score", "score")
    if lo > 0 and len(phase) == len(scores):
        ax.plot(steps[phase == 1], scores[phase == 1], lw=1.4, color="0.45", ls="--",
                label="phase 1 score (target vs prediction)")
        ax.plot(steps[phase == 2], scores[phase == 2], lw=1.6, color="tab:blue", label=f"{score} of {target}")
    else:
        ax.plot(steps, scores, lw=1.6, color="tab:blue", label=f"{score} of {target}")
    if hi > lo:
        ax.axvspan(lo + 0.5, hi + 0.5, color="tab:orange", alpha=0.2,
                   label=f"coloured patches (steps {lo + 1}-{hi})")
    if settings.get("stop_step") is not None:
        ax.axvline(done, color="tab:red", lw=1, label=f"stop rule met: step {done}")
    ax.set_xlabel(f"patches {_verb(explanation)} (step)")
    ax.set_ylabel(f"{score} of {target}")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    probs = explanation.arrays.get("probabilities")
    if probs is not None and len(probs) == len(scores) and len(scores):
        twin = ax.twinx()
        line, = twin.plot(steps, np.asarray(probs, dtype=float), lw=1.2, color="tab:green", ls=":",
                          label=f"p({target})")
        twin.set_ylim(-0.02, 1.02)
        twin.set_ylabel(f"probability of {target}")
        handles.append(line)
        labels.append(line.get_label())
    ax.legend(handles, labels, fontsize=7.5, loc="best", framealpha=0.85)
    ax.set_title("score after each step", fontsize=10)


def order_figure(image: torch.Tensor | np.ndarray, explanation: Explanation,
                 predicted: tuple[str, float] | None = None):
    """Photo | patches coloured by the step that chose them, over the photo, patch grid visible | score after
    every step; the figure titled with method, model, class, probability and settings."""
    fig = new_figure(14.5, 5.0)
    axes = fig.subplots(1, 3, width_ratios=[1, 1.15, 1.3])
    _photo_panel(axes[0], image, predicted)
    mappable, used, handles = draw_order(axes[1], image, explanation)
    if used:  # no colour bar when no patch is coloured (nothing was found)
        bar = fig.colorbar(mappable, ax=axes[1], shrink=0.85, label="step that chose the patch (1 = first)")
        if used <= 12:
            bar.set_ticks(range(1, used + 1))
    if handles:
        axes[1].legend(handles=handles, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.01),
                       framealpha=0.85)
    axes[1].set_title(order_title(explanation), fontsize=9)
    _score_panel(axes[2], explanation)
    fig.suptitle(figure_title(explanation), fontsize=10)
    return fig

"""The results summary each reproduced experiment hands to the claims table, and the measures read from it.

Why a summary: the claims table must be rebuilt from the stored results alone, without a model and without
recomputing anything. So every experiment of ``clearsight reproduce`` boils its stored units down to one
plain dict of JSON-able values (lists, dicts with string keys, numbers, strings), written beside its figures;
the measures below read nothing else. A key a measure needs but the summary lacks makes that claim
"not measured" (:class:`NotMeasured`), never a guessed value.

The contract (curves are lists of floats over N+1 equally spaced x = j/N in [0,1]; method names are the
CLI's: ``moxi``, ``moxi-minus``, ``gradcam``, ``gradcampp``, ``rollout``, ``shapley``, ``cartoonx``,
``pixel-rde``, ``random-wavelet``, ``random-pixel``). Every summary has the :class:`Common` keys.

``curves`` (MoXI Fig. 3/8/9)
    ``{"insertion": CurveSet, "deletion": CurveSet, "patches": N}`` where a :class:`CurveSet` is
    ``{"accuracy": {method: [N+1 accuracies in 0..1]}, "auc": {method: float}}`` (``auc`` optional: computed
    from ``accuracy`` with :func:`clearsight.evaluation.curves.auc` when missing).
``heatmaps`` (MoXI Fig. 4)
    ``{"steps": {"insertion": {method: [patches inserted until the prediction is right, per image]},
    "deletion": {method: [patches removed until it is wrong, per image]}}}``: the heatmaps' highlighted patches
    (from each image's stored curve: the first j at which the prediction turns right / wrong).
``class-discriminative`` (MoXI Fig. 5), ``qualitative`` (CartoonX Fig. 1-2)
    only :class:`Common` plus ``"figures": [paths]``: judged by eye.
``corruptions`` (MoXI Fig. 6, 13, 14)
    ``{"severity": 5, "corruptions": {name: CurveSet}}`` (deletion curves; names as
    :mod:`clearsight.corruptions`, e.g. ``gaussian_noise``, ``fog``).
``adversarial`` (MoXI Fig. 15, 16)
    ``{"epsilon": 1.0, "step": 0.2, "deletion": CurveSet, "perturbation_norms": {method: [N mean L2 norms of the
    perturbation per patch, in the method's deletion order]}}``.
``set-sum`` (MoXI Fig. 2)
    ``{"insertion": CurveSet, "patches": 4, "duplicate_rate": float}`` (``duplicate_rate``: share of training
    composites holding a repeated digit; optional).
``consistency`` (MoXI Fig. 7, 17)
    ``{"classes": [10, 20, 100, 1000], "insertion": {"auc": {method: {"10": float, ...}}, "accuracy": {method:
    {"10": curve, ...}}}, "deletion": {...}}`` (class counts as string keys, JSON's only kind).
``runtime`` (MoXI Table 1)
    ``{"seconds": {method: [per image]}, "greedy_steps": {"insertion": [per image], "deletion": [per image]},
    "patches": N}``; MoXI's seconds are split as ``moxi-insertion`` and ``moxi-deletion`` (until the
    prediction flips, as the paper times them).
``rate-distortion`` (CartoonX reproduction Fig. 3 left/middle)
    ``{"keep": RD, "randomize": RD}`` where an :class:`RD` is ``{"mean": {method: [101 distortions]},
    "normalized": {method: [101 values in %]}}`` (``normalized`` optional, as
    :meth:`clearsight.evaluation.DistortionResults.normalized`).
``lambda`` (Fig. 3 right)
    ``{"lambdas": [...], "distortion": {method: {str(lambda): mean}}, "sparsity": {method: {str(lambda): mean}}}``.
``vit`` (Fig. 4-5)
    ``{"cnn": {"model": str, "keep": RD, "randomize": RD}, "vit": {... the same}, "sparsity": {"cnn": [mask mean
    per image], "vit": [per image, same images]}}``; the common ``model`` names both.
``inits`` (Fig. 6)
    ``{"loss": {variant: [mean loss per step]}, "final": {variant: [final loss per image]}}`` (variants
    ``ones``, ``preoptimize``, ``foreground``, ``random``, as :mod:`clearsight.evaluation.initialisations`).
``runtime`` (CartoonX, Sec. 3.6)
    ``{"seconds": {"cartoonx": [per image], "pixel-rde": [per image]}}``.

Any summary may add ``"deviations": [str]``: how this run departs from the paper (they are listed in
results.md). Measures are looked up by name in :data:`MEASURES` and called as ``measure(summary, **args)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from ...evaluation.curves import auc as curve_auc
from ...explanation import atomic_write
from .papers import EXPERIMENTS, ClaimError, check_paper

EARLY = 0.25  # "the early stage" of a curve, our reading: the first quarter of the x axis


class Common(TypedDict, total=False):
    """Keys every summary carries: what the row's "our model" and "images" columns show."""

    model: str
    architecture: str  # "vit" or "cnn": claims tied to an architecture are measured only on a matching run
    images: int
    figures: list[str]
    deviations: list[str]


class CurveSet(TypedDict, total=False):
    accuracy: dict[str, list[float]]
    auc: dict[str, float]


class RD(TypedDict, total=False):
    mean: dict[str, list[float]]
    normalized: dict[str, list[float]]


def jsonable(value: Any) -> Any:
    """A summary as plain JSON values: numpy arrays and tuples become lists, numpy numbers Python numbers,
    NaN and infinities None (JSON has none; a measure then reports the curve as not finite), keys strings."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def write_summary(path: str | Path, summary: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Path:
    """Write an experiment's summary (or a list of them, one per model run) as JSON, atomically (what
    :func:`read_summary` reads back)."""
    path = Path(path)
    text = json.dumps(jsonable(summary), indent=1, allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path


def read_summary(path: str | Path) -> dict[str, Any] | list[dict[str, Any]]:
    """An experiment's summary (or list of them) from its JSON file; a missing or unreadable file is a
    :class:`ClaimError`."""
    try:
        summary = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ClaimError(f"cannot read the experiment summary {path}: {e}") from None
    if not isinstance(summary, dict) and not (isinstance(summary, list) and summary
                                              and all(isinstance(s, dict) for s in summary)):
        raise ClaimError(f"{path} is not an experiment summary (a JSON object, or a list of them)")
    return summary


def read_summaries(out: str | Path, paper: str,
                   read: Callable[[Path], Mapping[str, Any] | Sequence[Mapping[str, Any]] | None] | None = None
                   ) -> tuple[dict[str, Any], dict[str, str]]:
    """Every experiment summary of ``paper`` stored under a reproduce output folder ``out`` and the command
    line that made each.

    An experiment's summaries are ``out/PAPER/EXPERIMENT/MODEL/summary.json``, one per model it ran on (and
    ``out/PAPER/EXPERIMENT/summary.json`` for an experiment without a model of its own); several make a list,
    in folder order, so a claim about a CNN finds the CNN's run beside the ViT's. ``read`` reads one file
    (default :func:`read_summary`, for which an unreadable summary is a :class:`ClaimError`); a reader that
    returns None leaves that summary out, so its claims read "not measured" (the report page reads this way:
    it shows what it can of a folder). ``commands[experiment]`` is the first run's command; each run also
    keeps its own under ``"command"``.
    """
    paper = check_paper(paper)
    read = read or read_summary
    summaries: dict[str, Any] = {}
    commands: dict[str, str] = {}
    for experiment in EXPERIMENTS[paper]:
        folder = Path(out) / paper / experiment
        paths = [folder / "summary.json", *sorted(folder.glob("*/summary.json"))] if folder.is_dir() else []
        runs: list[Mapping[str, Any]] = []
        for path in paths:
            if not path.exists():
                continue
            stored = read(path)
            if stored is not None:
                runs += [stored] if isinstance(stored, Mapping) else list(stored)
        if not runs:
            continue
        signed = [r for r in runs if "command" in r]
        if signed:
            commands[experiment] = str(signed[0]["command"])
        summaries[experiment] = runs[0] if len(runs) == 1 else runs
    return summaries, commands


class NotMeasured(Exception):
    """The summary lacks what a measure needs (a method not run, a key not written): the claim's row says
    "not measured" with this reason instead of a value."""


def need(summary: Mapping[str, Any], *keys: str) -> Any:
    """``summary[k1][k2]...``, or :class:`NotMeasured` naming the missing path."""
    value: Any = summary
    for i, key in enumerate(keys):
        if not isinstance(value, Mapping) or key not in value:
            raise NotMeasured(f"the summary has no {'/'.join(keys[:i + 1])}")
        value = value[key]
    return value


def as_curve(values: Any, what: str) -> np.ndarray:
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or y.size < 2 or not np.isfinite(y).all():
        raise NotMeasured(f"{what} is not a curve of at least two finite numbers")
    return y


def value_at(curve: Sequence[float] | np.ndarray, x: float) -> float:
    """The curve at ``x`` in [0,1], linearly interpolated between its N+1 equally spaced points x = j/N:
    "accuracy at 4% of patches" on a 196-patch curve lies between j = 7 (3.57%) and j = 8 (4.08%)."""
    y = as_curve(curve, "the curve")
    return float(np.interp(x, np.linspace(0.0, 1.0, y.size), y))


def early_mean(curve: Sequence[float] | np.ndarray, upto: float = EARLY) -> float:
    """Mean of the curve over x in [0, upto] (trapezoid on the points there plus the interpolated end):
    how fast it rises or falls "at the early stage"."""
    y = as_curve(curve, "the curve")
    xs = np.linspace(0.0, 1.0, y.size)
    inside = xs < upto
    px = np.append(xs[inside], upto)
    py = np.append(y[inside], np.interp(upto, xs, y))
    return float((((py[1:] + py[:-1]) / 2) * np.diff(px)).sum() / upto)


def _curve(summary: Mapping[str, Any], path: Sequence[str], method: str) -> np.ndarray:
    return as_curve(need(summary, *path, method), "/".join([*path, method]))


def _auc(curve_set: Any, method: str, where: str) -> float:
    """A method's area from the curve set's ``auc``, else computed from its ``accuracy`` curve."""
    if not isinstance(curve_set, Mapping):
        raise NotMeasured(f"{where} is not a curve set")
    aucs = curve_set.get("auc") or {}
    if method in aucs:
        return float(aucs[method])
    accuracies = curve_set.get("accuracy") or {}
    if method not in accuracies:
        raise NotMeasured(f"the summary has no {where}/accuracy/{method}")
    return curve_auc(as_curve(accuracies[method], f"{where}/accuracy/{method}"))


def _present(methods: Mapping[str, Any], against: Sequence[str] | None, method: str) -> list[str]:
    """The rivals a method is compared with: ``against`` where given (those the run has), else all others."""
    rivals = [m for m in (against if against is not None else methods) if m != method and m in methods]
    if not rivals:
        raise NotMeasured(f"none of the methods to compare {method} with ({', '.join(against or [])}) was run")
    return rivals


def _sign(curve: str) -> float:
    """+1 where higher is better (insertion: accuracy returns), -1 where lower is (deletion)."""
    if curve not in ("insertion", "deletion"):
        raise ValueError(f"curve must be insertion or deletion, not {curve!r}")
    return 1.0 if curve == "insertion" else -1.0


# ---- insertion / deletion accuracy curves (curves, set-sum, corruptions, adversarial) ----

def accuracy_at(summary: Mapping[str, Any], curve: str, method: str, x: float) -> float:
    """One method's accuracy at ``x`` (share of patches inserted / deleted)."""
    return value_at(_curve(summary, [curve, "accuracy"], method), x)


def lead_at(summary: Mapping[str, Any], curve: str, method: str, x: float,
            against: Sequence[str] | None = None) -> float:
    """How far ``method`` is ahead of the best rival at ``x``: insertion, its accuracy minus the highest
    rival's; deletion, the lowest rival's minus its own. Positive = ``method`` is best."""
    accuracies = need(summary, curve, "accuracy")
    own = accuracy_at(summary, curve, method, x)
    rivals = [accuracy_at(summary, curve, m, x) for m in _present(accuracies, against, method)]
    return _sign(curve) * (own - (max(rivals) if curve == "insertion" else min(rivals)))


def auc_lead(summary: Mapping[str, Any], curve: str, method: str, against: Sequence[str] | None = None,
             path: Sequence[str] = ()) -> float:
    """How far ``method``'s area under the curve is ahead of the best rival's (sign as :func:`lead_at`).
    ``path`` leads to the curve set inside the summary (default: the ``curve`` key itself)."""
    curve_set = need(summary, *(path or [curve]))
    where = "/".join(path or [curve])
    aucs = {m: _auc(curve_set, m, where) for m in _present(_methods(curve_set), against, method) + [method]}
    own = aucs.pop(method)
    return _sign(curve) * (own - (max(aucs.values()) if curve == "insertion" else min(aucs.values())))


def _methods(curve_set: Any) -> dict[str, Any]:
    """Every method a curve set has a curve or an area for."""
    if not isinstance(curve_set, Mapping):
        raise NotMeasured("a curve set is not a mapping")
    return {**dict(curve_set.get("accuracy") or {}), **dict(curve_set.get("auc") or {})}


def group_auc_gap(summary: Mapping[str, Any], curve: str, group: Sequence[str], against: Sequence[str]) -> float:
    """How far the worst of ``group`` is ahead of the best of ``against`` in area (sign as :func:`lead_at`)."""
    curve_set = need(summary, curve)
    ours = [_auc(curve_set, m, curve) for m in group if m in _methods(curve_set)]
    theirs = [_auc(curve_set, m, curve) for m in against if m in _methods(curve_set)]
    if not ours or not theirs:
        raise NotMeasured(f"the run lacks {'/'.join(group) if not ours else '/'.join(against)}")
    if curve == "insertion":
        return min(ours) - max(theirs)
    return min(theirs) - max(ours)


def largest_drop(summary: Mapping[str, Any], curve: str) -> float:
    """The largest fall between neighbouring points of any method's accuracy curve (0 = all monotone)."""
    accuracies = need(summary, curve, "accuracy")
    if not accuracies:
        raise NotMeasured(f"the summary has no {curve} curves")
    return max(float(np.max(-np.diff(as_curve(c, m)), initial=0.0)) for m, c in accuracies.items())


def corruption_auc_lead(summary: Mapping[str, Any], corruption: str, method: str = "moxi") -> float:
    """Deletion-area lead of ``method`` under one corruption (positive = its curve falls fastest)."""
    return auc_lead(summary, "deletion", method, path=("corruptions", corruption))


def corruption_early_share(summary: Mapping[str, Any], method: str = "moxi", upto: float = EARLY) -> float:
    """Share of the corruptions under which ``method``'s deletion curve has the lowest mean over the early
    stage (x <= ``upto``) of all methods."""
    corruptions = need(summary, "corruptions")
    wins = []
    for name, curve_set in corruptions.items():
        accuracies = need(curve_set, "accuracy")
        if method not in accuracies:
            raise NotMeasured(f"{method} was not run under {name}")
        own = early_mean(accuracies[method], upto)
        wins.append(all(own < early_mean(c, upto) for m, c in accuracies.items() if m != method))
    if not wins:
        raise NotMeasured("the summary has no corruptions")
    return float(np.mean(wins))


def auc_difference(summary: Mapping[str, Any], path: Sequence[str], method: str, other: str) -> float:
    """Area of ``method``'s curve minus ``other``'s, both under ``path`` (a curve set)."""
    curve_set = need(summary, *path)
    return _auc(curve_set, method, "/".join(path)) - _auc(curve_set, other, "/".join(path))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1, ties sharing their mean rank (as Spearman's correlation needs)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(values.size, dtype=np.float64)
    for v in np.unique(values):
        tied = values == v
        ranks[tied] = ranks[tied].mean()
    return ranks


def norm_order_correlation(summary: Mapping[str, Any], method: str) -> float:
    """Spearman correlation between a patch's place in ``method``'s deletion order and the perturbation norm
    on it: negative when the order meets the most perturbed patches first."""
    norms = as_curve(need(summary, "perturbation_norms", method), f"perturbation_norms/{method}")
    a, b = _ranks(np.arange(norms.size, dtype=np.float64)), _ranks(norms)
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denominator == 0:
        raise NotMeasured(f"the perturbation norms of {method} are all equal")
    return float((a * b).sum() / denominator)


def norm_u_shape(summary: Mapping[str, Any], method: str) -> float:
    """Mean perturbation norm on the first and last thirds of ``method``'s deletion order minus that on the
    middle third: positive when the early and late patches carry more of the perturbation."""
    norms = as_curve(need(summary, "perturbation_norms", method), f"perturbation_norms/{method}")
    thirds = np.array_split(norms, 3)
    return float(np.concatenate([thirds[0], thirds[2]]).mean() - thirds[1].mean())


def duplicate_rate(summary: Mapping[str, Any]) -> float:
    return float(need(summary, "duplicate_rate"))


# ---- consistency (models restricted to 10 ... 1000 classes) ----

def _by_classes(summary: Mapping[str, Any], curve: str, method: str) -> list[float]:
    try:
        classes = [str(c) for c in sorted(int(c) for c in need(summary, "classes"))]
    except (TypeError, ValueError):
        raise NotMeasured("the consistency run's classes are not whole numbers") from None
    if len(classes) < 2:
        raise NotMeasured("the consistency run has fewer than two class counts")
    aucs = need(summary, curve, "auc", method)
    return [float(need(aucs, c)) for c in classes]


def consistency_drop(summary: Mapping[str, Any], curve: str, method: str) -> float:
    """Area under ``method``'s curve with the fewest classes minus that with the most (insertion: positive =
    the accuracy falls as the classes grow)."""
    aucs = _by_classes(summary, curve, method)
    return aucs[0] - aucs[-1]


def consistency_drop_lead(summary: Mapping[str, Any], method: str, against: Sequence[str]) -> float:
    """The smallest insertion-area drop of ``against`` minus ``method``'s: positive = ``method`` is the more
    stable as the number of classes grows."""
    rivals = [m for m in against if m in need(summary, "insertion", "auc")]
    if not rivals:
        raise NotMeasured(f"none of {', '.join(against)} was run")
    return min(consistency_drop(summary, "insertion", m) for m in rivals) - consistency_drop(summary, "insertion",
                                                                                              method)


def consistency_spread(summary: Mapping[str, Any], curve: str, method: str) -> float:
    """Largest minus smallest area of ``method``'s curve over the class counts."""
    aucs = _by_classes(summary, curve, method)
    return max(aucs) - min(aucs)


# ---- runtime ----

def _numbers(summary: Mapping[str, Any], *path: str) -> np.ndarray:
    values = np.asarray(need(summary, *path), dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise NotMeasured(f"{'/'.join(path)} holds no values")
    return values


STATISTICS: dict[str, Callable[[np.ndarray], float]] = {"mean": lambda v: float(v.mean()),
                                                       "median": lambda v: float(np.median(v))}


def seconds(summary: Mapping[str, Any], method: str, statistic: str = "mean") -> float:
    """Seconds per image of ``method``, averaged as the paper does (Table 1 gives averages over 100 images;
    ``median`` is there for runs whose first images pay for warm-up)."""
    return STATISTICS[statistic](_numbers(summary, "seconds", method))


def seconds_ratio(summary: Mapping[str, Any], slower: str, faster: str, statistic: str = "mean") -> float:
    """Seconds of ``slower`` over seconds of ``faster`` ("N times faster")."""
    return seconds(summary, slower, statistic) / max(seconds(summary, faster, statistic), 1e-12)


def seconds_lead(summary: Mapping[str, Any], method: str, faster: Sequence[str], statistic: str = "mean") -> float:
    """Seconds of ``method`` minus those of the slowest of ``faster`` (positive = all of them are faster)."""
    present = [m for m in faster if m in need(summary, "seconds")]
    if not present:
        raise NotMeasured(f"none of {', '.join(faster)} was timed")
    return seconds(summary, method, statistic) - max(seconds(summary, m, statistic) for m in present)


def median_greedy_steps(summary: Mapping[str, Any], curve: str) -> float:
    return float(np.median(_numbers(summary, "greedy_steps", curve)))


def share_steps_below(summary: Mapping[str, Any], curve: str, fraction: float) -> float:
    """Share of images whose greedy ``curve`` stopped after fewer than ``fraction`` x N steps."""
    steps = _numbers(summary, "greedy_steps", curve)
    return float(np.mean(steps < fraction * float(need(summary, "patches"))))


def median_steps_lead(summary: Mapping[str, Any], curve: str, method: str,
                      against: Sequence[str] | None = None) -> float:
    """The smallest median number of highlighted patches among ``against`` minus ``method``'s (positive =
    ``method`` highlights fewer patches)."""
    steps = need(summary, "steps", curve)
    rivals = _present(steps, against, method)
    own = float(np.median(_numbers(summary, "steps", curve, method)))
    return min(float(np.median(_numbers(summary, "steps", curve, m))) for m in rivals) - own


# ---- rate-distortion, lambda sweep, CartoonX on a ViT, initialisations ----

def rd_auc_difference(summary: Mapping[str, Any], figure: str, method: str, other: str,
                      model: str | None = None, normalized: bool = False) -> float:
    """Area under ``method``'s mean rate-distortion curve minus ``other``'s (``model`` picks ``cnn`` or
    ``vit`` of the ``vit`` summary)."""
    base = need(summary, model) if model else summary
    kind = "normalized" if normalized else "mean"
    return (curve_auc(_curve(base, [figure, kind], method)) - curve_auc(_curve(base, [figure, kind], other)))


def rd_auc_ratio(summary: Mapping[str, Any], figure: str, method: str, other: str) -> float:
    """Area under ``method``'s mean curve over ``other``'s (1 = they match)."""
    theirs = curve_auc(_curve(summary, [figure, "mean"], other))
    if theirs <= 0:
        raise NotMeasured(f"{other}'s {figure} curve has no area")
    return curve_auc(_curve(summary, [figure, "mean"], method)) / theirs


def rd_early_minimum(summary: Mapping[str, Any], method: str, figure: str = "keep", upto: float = EARLY) -> float:
    """The lowest point of the mean curve within the first ``upto`` of the components: how far the distortion
    drops when only the top components are kept (keeping all of them gives 0 at the end, so the end is not
    the drop)."""
    y = _curve(summary, [figure, "mean"], method)
    return float(y[np.linspace(0.0, 1.0, y.size) <= upto + 1e-12].min())


def rd_rise_after_drop(summary: Mapping[str, Any], method: str, figure: str = "keep", upto: float = EARLY) -> float:
    """Highest point after the early minimum (:func:`rd_early_minimum`), the last point excluded, minus that
    minimum: positive when the distortion rises again after its initial drop."""
    y = _curve(summary, [figure, "mean"], method)
    early = np.flatnonzero(np.linspace(0.0, 1.0, y.size) <= upto + 1e-12)
    low = int(early[np.argmin(y[early])])
    after = y[low:-1]
    return float(after.max() - y[low]) if after.size else 0.0


def lambda_largest_gap(summary: Mapping[str, Any], quantity: str, method: str, other: str) -> float:
    """The largest, over the lambdas run for both, of ``method``'s value minus ``other``'s (negative = below
    at every lambda)."""
    ours, theirs = need(summary, quantity, method), need(summary, quantity, other)
    shared = [k for k in ours if k in theirs]
    if not shared:
        raise NotMeasured(f"{method} and {other} share no lambda")
    return max(float(ours[k]) - float(theirs[k]) for k in shared)


def lambda_largest_ratio(summary: Mapping[str, Any], quantity: str, method: str, other: str) -> float:
    """The largest, over the shared lambdas, of ``method``'s value over ``other``'s (<= 1: never above)."""
    ours, theirs = need(summary, quantity, method), need(summary, quantity, other)
    shared = [k for k in ours if k in theirs and float(theirs[k]) > 0]
    if not shared:
        raise NotMeasured(f"{method} and {other} share no lambda with a positive {quantity}")
    return max(float(ours[k]) / float(theirs[k]) for k in shared)


def vit_early_gap(summary: Mapping[str, Any], figure: str, method: str = "cartoonx") -> float:
    """Early-stage mean of the CNN's normalised curve minus the ViT's: negative for ``keep`` when the CNN
    drops faster, positive for ``randomize`` when it rises faster."""
    cnn = early_mean(_curve(summary, ["cnn", figure, "normalized"], method))
    vit = early_mean(_curve(summary, ["vit", figure, "normalized"], method))
    return cnn - vit


def share_vit_sparser(summary: Mapping[str, Any]) -> float:
    """Share of images whose ViT CartoonX mask is sparser (lower mean) than the CNN's."""
    cnn, vit = _numbers(summary, "sparsity", "cnn"), _numbers(summary, "sparsity", "vit")
    if cnn.size != vit.size:
        raise NotMeasured("the ViT and CNN sparsities are not over the same images")
    return float(np.mean(vit < cnn))


def init_early_gap(summary: Mapping[str, Any], variant: str, reference: str = "ones", upto: float = 0.1) -> float:
    """Mean loss of ``variant`` minus ``reference`` over the first ``upto`` of the steps (negative = faster
    at first)."""
    return early_mean(_curve(summary, ["loss"], variant), upto) - early_mean(_curve(summary, ["loss"], reference),
                                                                              upto)


def init_final_ratio(summary: Mapping[str, Any], variant: str, reference: str = "ones") -> float:
    """Mean final loss of ``variant`` over ``reference``'s (1 = they end at the same loss)."""
    theirs = float(_numbers(summary, "final", reference).mean())
    if theirs <= 0:
        raise NotMeasured(f"{reference}'s final loss is not positive")
    return float(_numbers(summary, "final", variant).mean()) / theirs


def init_spread_ratio(summary: Mapping[str, Any], variant: str, reference: str = "ones") -> float:
    """Standard deviation over images of ``variant``'s final loss over ``reference``'s (> 1 = less robust)."""
    theirs = float(_numbers(summary, "final", reference).std())
    ours = float(_numbers(summary, "final", variant).std())
    return ours / theirs if theirs > 0 else (float("inf") if ours > 0 else 1.0)


MEASURES: dict[str, Callable[..., float]] = {f.__name__: f for f in (
    accuracy_at, lead_at, auc_lead, group_auc_gap, largest_drop, corruption_auc_lead, corruption_early_share,
    auc_difference, norm_order_correlation, norm_u_shape, duplicate_rate, consistency_drop, consistency_drop_lead,
    consistency_spread, seconds, seconds_ratio, seconds_lead, median_greedy_steps, share_steps_below,
    median_steps_lead, rd_auc_difference, rd_auc_ratio, rd_early_minimum, rd_rise_after_drop, lambda_largest_gap,
    lambda_largest_ratio, vit_early_gap, share_vit_sparser, init_early_gap, init_final_ratio, init_spread_ratio)}

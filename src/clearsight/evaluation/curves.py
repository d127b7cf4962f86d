"""Insertion and deletion curves for any patch ordering (SPEC C.8).

For one image and an ordering of its N patches: insertion keeps the first j patches, deletion removes
them, for j = 0..N (N+1 points; j = 0 is the empty image for insertion and the clean image for deletion,
evaluated, not assumed). Per image the curve is the score after each j; over a set of images it is the
top-1 accuracy (prediction == label) at every j, as in the MoXI paper. The area under either curve uses
x = j/N in [0,1].

Orders: MoXI and MoXI(-) use their own full insertion / deletion orders; Grad-CAM, Grad-CAM++, attention
rollout and Shapley give their patches by descending saliency, the same order for both curves (the paper:
"image patches are inserted and deleted in the same order"). Absence: token dropping for ViTs, the mean
fill for CNNs (:func:`clearsight.parts.default_absence`) unless given.

Full-order MoXI costs minutes per image, so a curve over a folder takes hours: with a ``store`` folder,
each finished (image, method) curve is written there atomically and an interrupted evaluation resumes
where it stopped, recomputing nothing that was finished (:class:`CurveStore`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import MethodError
from ..explanation import Explanation
from ..parts import Absence, PatchGame, PatchGrid, make_absence
from .runs import StoredRuns, skip_reporter

Curve = Literal["insertion", "deletion"]
GREEDY_METHODS = ("moxi", "moxi-minus")
PATCH_METHODS = ("moxi", "moxi-minus", "shapley")


def check_curve(curve: str) -> Curve:
    if curve not in ("insertion", "deletion"):
        raise MethodError(f"curve must be 'insertion' or 'deletion'; got {curve!r}")
    return curve  # type: ignore[return-value]


def auc(y: Sequence[float] | np.ndarray) -> float:
    """Area under a curve sampled at equally spaced x in [0,1] (trapezoid rule)."""
    y = np.asarray(y, dtype=np.float64)
    if y.size < 2:
        raise MethodError("a curve needs at least two points")
    return float(((y[1:] + y[:-1]) / 2).sum() / (y.size - 1))


def patch_scores(explanation: Explanation, grid: PatchGrid) -> torch.Tensor:
    """One saliency value per patch: the method's grid-resolution map when it matches, else the mean of
    the ``(H,W)`` saliency over each patch."""
    raw = explanation.arrays.get("grid")
    if raw is not None and tuple(np.shape(raw)) == grid.shape:
        return torch.as_tensor(np.asarray(raw), dtype=torch.float32).reshape(-1)
    return grid.pool(torch.as_tensor(np.asarray(explanation.saliency), dtype=torch.float32))


def saliency_order(explanation: Explanation, grid: PatchGrid) -> torch.Tensor:
    """Patches by descending saliency (stable: ties keep the lower index first)."""
    return torch.argsort(patch_scores(explanation, grid), descending=True, stable=True)


def order_coalitions(order: torch.Tensor, curve: Curve) -> torch.Tensor:
    """Keep-masks ``(N+1,N)``: row j keeps the first j patches (insertion) or all but them (deletion)."""
    n = order.numel()
    ranks = torch.empty(n, dtype=torch.long, device=order.device)
    ranks[order] = torch.arange(n, device=order.device)
    first_j = ranks[None, :] < torch.arange(n + 1, device=order.device)[:, None]
    return first_j if curve == "insertion" else ~first_j


def image_curve(game: PatchGame, order: torch.Tensor, curve: Curve) -> tuple[np.ndarray, np.ndarray]:
    """Score and predicted class after each j = 0..N patches inserted / deleted along ``order``."""
    order = torch.as_tensor(order, dtype=torch.long, device=game.clf.device)
    if sorted(order.tolist()) != list(range(game.num_players)):
        raise MethodError(f"an ordering must list each of the {game.num_players} patches once")
    values, logits = game.evaluate(order_coalitions(order, check_curve(curve)))
    return values.cpu().numpy(), logits.argmax(1).cpu().numpy()


def method_order(method: str, clf, image: torch.Tensor, target: int, curve: Curve,
                 options: dict[str, Any] | None = None, grid: PatchGrid | None = None) -> torch.Tensor:
    """The full patch ordering ``method`` gives ``image`` for ``curve``."""
    from ..methods import build_explainer

    options = dict(options or {})
    if method in GREEDY_METHODS:
        options.update(mode=curve, full_order=True)
    explanation = build_explainer(method, options).explain(clf, image, target)
    grid = grid or PatchGrid.for_classifier(clf)
    if method in GREEDY_METHODS:
        return torch.as_tensor(explanation.order, dtype=torch.long)
    return saliency_order(explanation, grid)


@dataclass
class CurveResults:
    """Curves of several methods over a set of images.

    ``scores[method]`` and ``correct[method]`` are ``(images, N+1)``; :meth:`accuracy` averages ``correct``
    over images (the dataset curve), :meth:`aucs` integrates it over x in [0,1]. ``orders[method]`` holds each
    image's patch ordering (absent for curves stored before orders were kept). ``name`` prefixes the files
    :meth:`save` writes (default: the curve) and ``xlabel`` labels the figure's x axis.
    """

    curve: Curve
    name: str = ""
    xlabel: str | None = None
    images: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    scores: dict[str, list[np.ndarray]] = field(default_factory=dict)
    correct: dict[str, list[np.ndarray]] = field(default_factory=dict)
    orders: dict[str, list[np.ndarray]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.name = self.name or self.curve

    def add(self, method: str, scores: np.ndarray, predictions: np.ndarray, label: int, seconds: float,
            order: np.ndarray | None = None) -> None:
        self.scores.setdefault(method, []).append(np.asarray(scores, dtype=np.float32))
        self.correct.setdefault(method, []).append(np.asarray(predictions) == label)
        if order is not None:
            self.orders.setdefault(method, []).append(np.asarray(order, dtype=np.int64))
        self.seconds[method] = self.seconds.get(method, 0.0) + seconds

    @property
    def methods(self) -> list[str]:
        return list(self.correct)

    def accuracy(self, method: str) -> np.ndarray:
        return np.stack(self.correct[method]).mean(0)

    def mean_score(self, method: str) -> np.ndarray:
        return np.stack(self.scores[method]).mean(0)

    def aucs(self) -> dict[str, float]:
        return {m: auc(self.accuracy(m)) for m in self.methods}

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``{name}_accuracy.csv``, ``{name}_score.csv``, ``{name}_auc.csv``, ``{name}.json`` and
        ``{name}.png`` into ``out`` (``name``: the curve unless set)."""
        from ..viz.curves import save_curve_figure

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "accuracy": self._write_table(out / f"{self.name}_accuracy.csv", self.accuracy),
            "score": self._write_table(out / f"{self.name}_score.csv", self.mean_score),
            "auc": out / f"{self.name}_auc.csv",
            "json": out / f"{self.name}.json",
            "png": out / f"{self.name}.png",
        }
        with open(paths["auc"], "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["method", "auc_accuracy", "auc_mean_score", "images", "seconds"])
            for m in self.methods:
                w.writerow([m, f"{auc(self.accuracy(m)):.6f}", f"{auc(self.mean_score(m)):.6f}",
                            len(self.correct[m]), f"{self.seconds.get(m, 0.0):.2f}"])
        meta = {"curve": self.curve, "name": self.name, "images": self.images, "labels": self.labels,
                "skipped": self.skipped, "aucs": self.aucs(), "seconds": self.seconds, "settings": self.settings}
        paths["json"].write_text(json.dumps(meta, indent=2))
        save_curve_figure({m: self.accuracy(m) for m in self.methods}, self.curve, paths["png"], self.aucs(),
                          xlabel=self.xlabel, title=None if self.name == self.curve else f"{self.name} curves")
        return paths

    def _write_table(self, path: Path, column: Callable[[str], np.ndarray]) -> Path:
        return write_curve_table(path, {m: column(m) for m in self.methods})


def write_curve_table(path: Path, columns: dict[str, np.ndarray]) -> Path:
    """A CSV with a ``fraction`` column (x in [0,1], equally spaced) and one column per curve."""
    n = len(next(iter(columns.values()))) if columns else 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fraction", *columns])
        for j in range(n):
            w.writerow([f"{j / max(1, n - 1):.6f}", *(f"{columns[m][j]:.6f}" for m in columns)])
    return path


def evaluate_curves(clf, images: Sequence[torch.Tensor], labels: Sequence[int | None], methods: Sequence[str],
                    curve: Curve = "insertion", names: Sequence[str] | None = None,
                    absence: Absence | str | None = None, score: str = "log-odds",
                    method_options: dict[str, dict[str, Any]] | None = None, patch_size: int | None = None,
                    progress: Callable[[str], None] | None = None,
                    store: str | Path | None = None) -> CurveResults:
    """Curves of ``methods`` over ``images`` (``(3,H,W)`` tensors) with ``labels``.

    A label of None means "the prediction". Images the model misclassifies are skipped (the paper explains
    correctly classified images only); ``progress`` is called once per (image, method) done. ``patch_size``
    sets the players of the curves and of the patch-based methods (MoXI, MoXI(-), Shapley). With ``store``,
    finished (image, method) curves are kept in that folder and reused (:class:`CurveStore`); images are
    then told apart by ``names``, which must be unique.
    """
    curve = check_curve(curve)
    absence = make_absence(absence, clf)
    grid = PatchGrid.for_classifier(clf, patch_size)
    options = {m: dict((method_options or {}).get(m, {})) for m in methods}
    for m in PATCH_METHODS:
        if m in options and patch_size is not None:
            options[m].setdefault("patch_size", patch_size)
    results = CurveResults(curve=curve, settings={
        "absence": absence.describe(), "score": score, "model": clf.name, "unit": "patch",
        "metric": "top-1 accuracy", "methods": list(methods)})
    runs = StoredRuns(clf, images, labels, names, methods, options, store,
                      {**results.settings, "curve": curve, "grid": list(grid.shape)})
    for name, image, target in runs.correctly_classified(skip_reporter(results.skipped, methods, progress)):
        game = PatchGame(clf, image, target, score=score, absence=absence, grid=grid)
        results.settings.setdefault("steps", game.num_players)
        results.images.append(name)
        results.labels.append(target)
        for method in methods:
            compute = partial(_method_curve, method, game, curve, options[method], grid)
            finished = runs.result(method, method, name, image, target, compute)
            results.add(method, finished["scores"], finished["predictions"], target, float(finished["seconds"]),
                        finished.get("order"))
            if progress:
                progress(method)
    return results


def _method_curve(method: str, game: PatchGame, curve: Curve, options: dict[str, Any], grid: PatchGrid
                  ) -> dict[str, np.ndarray]:
    order = method_order(method, game.clf, game.image, game.target, curve, options, grid)
    values, preds = image_curve(game, order, curve)
    return {"scores": values.astype(np.float32), "predictions": preds, "order": order.cpu().numpy()}


def read_labels(path: str | Path, clf=None) -> dict[str, int]:
    """Labels from a CSV with a header: a ``file`` column and a ``class_index`` (or ``label``) column.

    Labels may be class indices or, with ``clf``, class names. Keys are file names (no folder).
    """
    from ..errors import ImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"labels file not found: {path}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "file" not in rows[0]:
        raise ImageError(f"{path} needs a header with a 'file' column and a 'class_index' or 'label' column")
    column = "class_index" if "class_index" in rows[0] else "label" if "label" in rows[0] else None
    if column is None:
        raise ImageError(f"{path} has no 'class_index' or 'label' column")
    labels = {}
    for row in rows:
        value = row[column].strip()
        labels[Path(row["file"]).name] = clf.check_target(value) if clf is not None else int(value)
    return labels

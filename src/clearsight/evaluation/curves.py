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

Full-order MoXI costs minutes per image, so a curve over a folder takes hours: each (image, method) curve
is one unit of :mod:`clearsight.evaluation.driver`; with a ``store`` folder each finished one is written
there atomically and an interrupted evaluation resumes where it stopped, recomputing nothing that was
finished.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ClearsightError, MethodError
from ..explanation import Explanation, atomic_csv, atomic_write_text
from ..methods.base import Explainer
from ..methods.capabilities import can, registered_class
from ..parts import Absence, PatchGame, PatchGrid, make_absence
from ..wording import counted
from .driver import Evaluation, Progress, result_options
from .sources import EvalMethod, resolve_methods, with_attributes

Curve = Literal["insertion", "deletion"]


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


def method_order(method: str | Explainer | Explanation, clf, image: torch.Tensor, target: int, curve: Curve,
                 options: dict[str, Any] | None = None, grid: PatchGrid | None = None) -> torch.Tensor:
    """The full patch ordering ``method`` gives ``image`` for ``curve``.

    ``method`` is a name (made with ``options``), an explainer, or an explanation already made. Methods whose
    class ``gives_order`` (MoXI, MoXI(-)) give their own full order for that curve (a name is run in the
    curve's mode; an explainer must already be in it); the others give their patches by descending saliency.
    """
    grid = grid or PatchGrid.for_classifier(clf)
    if isinstance(method, Explanation):
        explanation = method
    else:
        explainer = _curve_explainer(method, curve, options)
        run = {"checkpoint_dir": (options or {}).get("checkpoint_dir")} if isinstance(method, str) else {}
        explanation = explainer.explain(clf, image, target, **{k: v for k, v in run.items() if v is not None})
    order = explanation.order
    if order is not None and np.asarray(order).size == grid.size:
        mode = explanation.settings.get("mode")
        if mode is not None and mode != curve:
            raise MethodError(f"the {explanation.method} order was made for {mode}; a {curve} curve needs the "
                              f"{curve} order")
        return torch.as_tensor(np.asarray(order), dtype=torch.long)
    cls = registered_class(explanation.method)
    if cls is not None and can(cls, "gives_order"):
        raise MethodError(f"the {explanation.method} explanation orders {0 if order is None else len(order)} of the "
                          f"{grid.size} patches: a curve needs the full order (full_order=True)")
    return saliency_order(explanation, grid)


def _curve_explainer(method: str | Explainer, curve: Curve, options: dict[str, Any] | None) -> Explainer:
    """The explainer a curve runs: a name made with ``options`` (in the curve's mode and with a full order,
    when it gives its own order), or a copy of the explainer given, with a full order."""
    if isinstance(method, str):
        from ..methods import build_explainer

        options = result_options(dict(options or {}))
        if can(method, "gives_order") and curve in can(method, "modes"):
            options.update(mode=curve, full_order=True)
        return build_explainer(method, options)
    if can(method, "gives_order"):
        mode = getattr(method, "mode", curve)
        if mode != curve:
            raise MethodError(f"{type(method).__name__}(mode={mode!r}) gives the {mode} order; a {curve} curve needs "
                              f"mode={curve!r}")
        return with_attributes(method, full_order=True)
    return method


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

    def extend(self, other: CurveResults) -> CurveResults:
        """This set with ``other``'s images after its own (the same curve and methods, other photos): the
        curves of a folder computed a group of photos at a time come back as one set."""
        if other.curve != self.curve:
            raise MethodError(f"cannot join {other.curve} curves to {self.curve} curves")
        self.images += other.images
        self.labels += other.labels
        self.skipped += other.skipped
        for mine, theirs in ((self.scores, other.scores), (self.correct, other.correct),
                             (self.orders, other.orders)):
            for method, rows in theirs.items():
                mine.setdefault(method, []).extend(rows)
        for method, seconds in other.seconds.items():
            self.seconds[method] = self.seconds.get(method, 0.0) + seconds
        self.settings = {**other.settings, **self.settings}
        return self

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
        with atomic_csv(paths["auc"]) as w:
            w.writerow(["method", "auc_accuracy", "auc_mean_score", "images", "seconds"])
            for m in self.methods:
                w.writerow([m, f"{auc(self.accuracy(m)):.6f}", f"{auc(self.mean_score(m)):.6f}",
                            len(self.correct[m]), f"{self.seconds.get(m, 0.0):.2f}"])
        meta = {"curve": self.curve, "name": self.name, "images": self.images, "labels": self.labels,
                "skipped": self.skipped, "aucs": self.aucs(), "seconds": self.seconds, "settings": self.settings}
        save_curve_figure({m: self.accuracy(m) for m in self.methods}, self.curve, paths["png"], self.aucs(),
                          xlabel=self.xlabel, title=self.title())
        atomic_write_text(paths["json"], json.dumps(meta, indent=2))  # last: the record of a finished result
        return paths

    def title(self) -> str:
        """The figure's title: which curves, on which model, over how many photos (an accuracy over 4 photos
        moves in steps of 25%, and the reader should see that at once)."""
        count = max((len(v) for v in self.correct.values()), default=0)
        model = self.settings.get("model")
        return ", ".join([f"{self.name} curves", *([str(model)] if model else []),
                          counted(count, "photo")])

    def _write_table(self, path: Path, column: Callable[[str], np.ndarray]) -> Path:
        return write_curve_table(path, {m: column(m) for m in self.methods})


def write_curve_table(path: Path, columns: dict[str, np.ndarray]) -> Path:
    """A CSV with a ``fraction`` column (x in [0,1], equally spaced) and one column per curve."""
    n = len(next(iter(columns.values()))) if columns else 0
    with atomic_csv(path) as w:
        w.writerow(["fraction", *columns])
        for j in range(n):
            w.writerow([f"{j / max(1, n - 1):.6f}", *(f"{columns[m][j]:.6f}" for m in columns)])
    return path


def evaluate_curves(clf, images: Sequence[torch.Tensor], labels: Sequence[int | None], methods: Sequence[Any],
                    curve: Curve = "insertion", names: Sequence[str] | None = None,
                    absence: Absence | str | None = None, score: str = "log-odds",
                    method_options: dict[str, dict[str, Any]] | None = None, patch_size: int | None = None,
                    progress: Progress | None = None, store: str | Path | None = None,
                    engine: Any = None) -> CurveResults:
    """Curves of ``methods`` over ``images`` (``(3,H,W)`` tensors) with ``labels``.

    ``methods`` are names (made with ``method_options``), :class:`~clearsight.methods.Explainer` objects or
    saved explanations (:class:`~clearsight.evaluation.sources.SavedExplanations`, or a mapping image name ->
    :class:`Explanation`). ``clf`` is a loaded classifier or a
    :class:`~clearsight.evaluation.driver.ModelSpec` (workers then load the model themselves).

    A label of None means "the prediction". Images the model misclassifies are skipped (the paper explains
    correctly classified images only); ``progress`` is called once per (image, method) done. ``patch_size``
    sets the players of the curves and of the methods that play the patch game (MoXI, MoXI(-), Shapley). With
    ``store``, finished (image, method) curves are kept in that folder and reused; images are then told apart
    by ``names``, which must be unique. ``engine`` runs the units (default: in this process).
    """
    curve = check_curve(curve)
    resolved = resolve_methods(methods, _with_patch_size(methods, method_options, patch_size))
    resolved = [_with_curve_patch_size(m, patch_size) for m in resolved]
    labels_out = [m.label for m in resolved]
    run = Evaluation(clf, images, labels, names, curve, {}, store, engine)
    clf = run.clf
    absence = make_absence(absence, clf)
    grid = PatchGrid.for_classifier(clf, patch_size)
    if images and tuple(images[0].shape[-2:]) != (grid.height, grid.width):  # photos brought to another size
        grid = PatchGrid(int(images[0].shape[-2]), int(images[0].shape[-1]), grid.patch)
    results = CurveResults(curve=curve, settings={
        "absence": absence.describe(), "score": score, "model": clf.name, "unit": "patch",
        "metric": "top-1 accuracy", "methods": labels_out})
    # absence and grid depend on the model, known once loaded: they join the units' settings before any is planned
    run.parameters.update(absence=absence.describe(), score=score, grid=list(grid.shape))
    kept, results.skipped = run.classified()
    results.images, results.labels = [name for name, _, _ in kept], [target for _, _, target in kept]
    planned = run.plan_methods(kept, resolved, curve_unit,
                               {"curve": curve, "score": score, "absence": absence, "grid": grid})
    if kept:
        results.settings.setdefault("steps", grid.size)
    finished = run.run(planned, results.skipped, labels_out, progress)
    for p in planned:
        arrays = finished[p.unit]
        results.add(p.label, arrays["scores"], arrays["predictions"], p.task.target, float(arrays["seconds"]),
                    arrays.get("order"))
    return results


def _with_patch_size(methods: Sequence[Any], method_options: dict[str, dict[str, Any]] | None,
                     patch_size: int | None) -> dict[str, dict[str, Any]]:
    """Each named method's options, with the curve's ``patch_size`` for those that play the patch game."""
    options = {m: dict((method_options or {}).get(m, {})) for m in methods if isinstance(m, str)}
    for m in options:
        if patch_size is not None and registered_class(m) is not None and can(m, "patch_game"):
            options[m].setdefault("patch_size", patch_size)
    return options


def _with_curve_patch_size(method: EvalMethod, patch_size: int | None) -> EvalMethod:
    """An explainer object that plays the patch game with its default patch takes the curve's patches."""
    e = method.explainer
    if e is not None and patch_size is not None and can(e, "patch_game") and getattr(e, "patch_size", 0) is None:
        method.explainer = with_attributes(e, patch_size=patch_size)
    return method


def curve_unit(clf, image: torch.Tensor, target: int, options: dict[str, Any]) -> dict[str, np.ndarray]:
    """One (image, method) curve: the method's order, then the scores and predictions along it."""
    game = PatchGame(clf, image, target, score=options["score"], absence=options["absence"], grid=options["grid"])
    order = method_order(options["method"], clf, image, target, options["curve"], options["method_options"],
                         options["grid"])
    values, preds = image_curve(game, order, options["curve"])
    return {"scores": values.astype(np.float32), "predictions": preds, "order": order.cpu().numpy()}


def read_labels(path: str | Path, clf=None) -> dict[str, int]:
    """Labels from a CSV with a header: a ``file`` column and a ``class_index`` (or ``label``) column.

    Labels may be class indices or, with ``clf``, class names. Keys are file names (no folder).
    """
    from ..errors import ImageError
    from ..io import check_image_file

    path = check_image_file(path, "labels file")  # a folder or FIFO is refused before it is opened
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark (Excel's UTF-8) is fine
    except PermissionError:
        raise ImageError(f"cannot read labels file {path}: permission denied") from None
    except OSError as err:
        raise ImageError(f"cannot read labels file {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ImageError(f"labels file {path} is not UTF-8 text; save it as UTF-8 CSV") from None
    if "\0" in text:
        raise ImageError(f"labels file {path} holds NUL bytes: not a CSV text file")
    try:
        rows = list(csv.DictReader(text.splitlines()))
    except csv.Error as err:
        raise ImageError(f"labels file {path} is not valid CSV: {err}") from None
    if not rows or "file" not in rows[0]:
        raise ImageError(f"{path} needs a header with a 'file' column and a 'class_index' or 'label' column")
    column = "class_index" if "class_index" in rows[0] else "label" if "label" in rows[0] else None
    if column is None:
        raise ImageError(f"{path} has no 'class_index' or 'label' column")
    labels = {}
    for line, row in enumerate(rows, start=2):
        file, value = row.get("file"), row.get(column)
        if not isinstance(file, str) or not isinstance(value, str) or not file.strip() or not value.strip():
            raise ImageError(f"{path} line {line}: a row needs a file name and a {column}")
        value = value.strip()
        if clf is not None:
            try:
                labels[Path(file.strip()).name] = clf.check_target(value)
            except ClearsightError as err:
                raise ImageError(f"{path} line {line}: {err}") from None
        elif re.fullmatch(r"-?[0-9]+", value):
            labels[Path(file.strip()).name] = int(value)
        else:
            raise ImageError(f"{path} line {line}: {column} {value!r} is not a class index")
    return labels

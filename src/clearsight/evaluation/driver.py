"""The one loop behind every evaluation over a set of images: classify, plan units, run them on an engine.

Insertion/deletion curves, rate-distortion curves, the lambda sweep and the initialisation comparison all
do the same thing per image: skip it when the model misclassifies it (the papers explain correctly
classified images only), then compute one result per (method[, variant]). Each such result is a
:class:`~clearsight.engine.Unit` whose settings name everything it depends on (the model, its weights
digest and precision, the image's pixel digest, the target, the image size, the method's result options and the
experiment's parameters), so an engine computes it once, a :class:`~clearsight.engine.UnitStore` keeps it,
and a run with any other setting never reuses it.

A unit's computation is a module-level function ``compute(clf, image, target, options) -> arrays``, so
that the :class:`UnitWork` carrying them pickles to other processes (the Ray engine). The work carries the
model either as the loaded :class:`~clearsight.models.Classifier` (the local engine) or as a
:class:`ModelSpec` that each worker loads once in ``setup()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoints import pixel_digest
from ..engine import LocalEngine, Unit, UnitStore
from ..errors import MethodError

#: ``compute(clf, image, target, options)``: one unit's named arrays
Compute = Callable[[Any, torch.Tensor, int, dict[str, Any]], dict[str, Any]]
#: the callback of the evaluate_* functions: one call per unit, with its label (method, variant)
Progress = Callable[[str], None]
#: method options that change how a run is watched or where it keeps its state, never its result
NOT_RESULT_OPTIONS = ("checkpoint_dir", "progress")


def result_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options that decide a method's result (part of its units' settings)."""
    return {k: v for k, v in options.items() if k not in NOT_RESULT_OPTIONS}


@dataclass(frozen=True)
class ModelSpec:
    """How a worker process loads the model itself (:func:`clearsight.models.load_model`'s arguments), so
    that work sent to a cluster carries a few strings instead of the weights."""

    spec: str
    weights: str | None = None
    device: str = "cpu"
    precision: str = "fp32"

    def load(self):
        from ..models import load_model

        return load_model(self.spec, weights=self.weights, device=self.device, precision=self.precision)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Task:
    """What one unit runs: ``compute(clf, image, target, options)``."""

    compute: Compute
    image: torch.Tensor
    target: int
    options: dict[str, Any]


class UnitWork:
    """:class:`~clearsight.engine.Work` over planned units: ``setup`` gives the classifier (loaded from its
    :class:`ModelSpec` in a worker, or the one given), ``compute`` runs a unit's task and adds the
    ``seconds`` it took."""

    def __init__(self, model: Any, tasks: dict[Unit, Task]) -> None:
        self.model = model
        self.tasks = tasks

    def setup(self):
        return self.model.load() if isinstance(self.model, ModelSpec) else self.model

    def compute(self, clf, unit: Unit) -> dict[str, np.ndarray]:
        task = self.tasks[unit]
        start = time.perf_counter()
        arrays = task.compute(clf, task.image.to(clf.device), task.target, task.options)
        return {**{k: np.asarray(v) for k, v in arrays.items()}, "seconds": np.asarray(time.perf_counter() - start)}


def loaded(model: Any):
    """(the classifier this process uses, what the work carries): a :class:`ModelSpec` is loaded here too,
    to classify the images and plan the units."""
    return (model.load(), model) if isinstance(model, ModelSpec) else (model, model)


@dataclass
class Planned:
    """One unit with its task and the label ``progress`` reports for it."""

    unit: Unit
    task: Task
    label: str


class Evaluation:
    """The images of one evaluation (told apart by unique ``names``), the units planned on them, and the
    engine and store they run on.

    ``model`` is a loaded classifier or a :class:`ModelSpec`; ``experiment`` names the experiment in every
    unit (``insertion``, ``rate-distortion``, ``lambda-sweep``, ...) and ``parameters`` are the experiment's own
    settings, part of every unit's settings (those that depend on the loaded model may be added to it before
    the first unit is planned).
    """

    def __init__(self, model: Any, images: Sequence[torch.Tensor], labels: Sequence[int | None],
                 names: Sequence[str] | None, experiment: str, parameters: dict[str, Any],
                 store: str | Path | None = None, engine: Any = None) -> None:
        self.clf, self.work_model = loaded(model)
        if len(labels) != len(images):
            raise MethodError(f"{len(labels)} labels for {len(images)} images: give one per image (None: the "
                              "prediction)")
        self.images, self.labels = list(images), list(labels)
        self.names = list(names) if names is not None else [f"image{i}" for i in range(len(images))]
        if len(self.names) != len(self.images):
            raise MethodError(f"{len(self.names)} names for {len(self.images)} images")
        if store is not None and len(set(self.names)) != len(self.names):
            raise MethodError("image names must be unique when finished results are stored")
        self.experiment, self.parameters = experiment, dict(parameters)
        self.store = UnitStore(store) if store is not None else None
        self.engine = engine if engine is not None else LocalEngine()
        if getattr(self.engine, "name", None) == "local":  # in this process: the model loaded here serves
            self.work_model = self.clf
        self._base: dict[str, Any] | None = None

    def classified(self) -> tuple[list[tuple[str, torch.Tensor, int]], list[str]]:
        """(name, image on the model's device, target) of each image whose label the model predicts (a label
        of None: the prediction is the target), and the names of the others."""
        kept, skipped = [], []
        for image, label, name in zip(self.images, self.labels, self.names):
            image = image.to(self.clf.device)
            predicted = int(self.clf.logits(image[None])[0].argmax())
            if label is not None and predicted != int(label):
                skipped.append(name)
            else:
                kept.append((name, image, predicted if label is None else int(label)))
        return kept, skipped

    def unit(self, name: str, image: torch.Tensor, target: int, method: str, settings: dict[str, Any]) -> Unit:
        """The unit of ``method`` (a label, with its variant) on one image: its ``settings`` plus the model,
        its weights digest and precision, the pixels' digest, target, size and the experiment's parameters."""
        if self._base is None:
            self._base = {"model": self.clf.name, "weights": self.clf.weights_digest(),
                          "precision": getattr(self.clf, "precision", "fp32"), **self.parameters}
        return Unit.make(self.experiment, name, method, {
            **self._base, "pixels": pixel_digest(image), "target": int(target), "size": list(image.shape[-2:]),
            "method": settings})

    def plan(self, name: str, image: torch.Tensor, target: int, method: str, settings: dict[str, Any],
             compute: Compute, options: dict[str, Any], label: str | None = None) -> Planned:
        return Planned(self.unit(name, image, target, method, settings),
                       Task(compute, image.detach().cpu(), int(target), options), label or method)

    def plan_methods(self, kept: Sequence[tuple[str, torch.Tensor, int]], methods: Sequence[Any], compute: Compute,
                     extra: dict[str, Any], variants: Sequence[tuple[str, dict[str, Any]]] = (("", {}),)
                     ) -> list[Planned]:
        """One unit per (kept image, method, variant) of :func:`~clearsight.evaluation.sources.resolve_methods`'
        output, in that order: the method's source for that image (name, explainer or saved explanation) with
        its options, the evaluation's ``extra`` options and the variant's, keyed by the method's settings for
        that source plus the variant's. A variant is (label suffix, settings), e.g. the lambda sweep's
        ``("-lambda4", {"lambda_k": 4.0})``; the default is the method itself."""
        planned = []
        for name, image, target in kept:
            for m in methods:
                source = m.source(name, target)
                for suffix, changes in variants:
                    options = {"method": source, "method_options": m.options, **extra, **changes}
                    planned.append(self.plan(name, image, target, f"{m.label}{suffix}",
                                             {**m.settings(source), **changes}, compute, options))
        return planned

    def run(self, planned: Sequence[Planned], skipped: Sequence[str] = (), labels_per_image: Sequence[str] = (),
            progress: Progress | None = None) -> dict[Unit, dict[str, np.ndarray]]:
        """Every planned unit's arrays (stored ones loaded, others computed on the engine and stored).

        ``progress(label)`` is called once per unit, and once per label in ``labels_per_image`` for each
        skipped image, so that a progress bar sized images x units still ends full. A ``progress`` with an
        ``expect(n)`` method is told first that at least ``n`` more calls follow (a bar over several
        evaluations, such as ``clearsight reproduce``'s, grows its total to cover each one as it is planned, and
        keeps a larger total its caller announced for all of them); one with a
        ``from_store(label)`` method gets the units that cost nothing (loaded from the store, or a skipped
        image's) there instead, so that its estimate of the time left counts computed units only.
        """
        expect = getattr(progress, "expect", None)
        if expect is not None:
            expect(len(planned) + len(skipped) * len(labels_per_image))
        free = getattr(progress, "from_store", progress)
        if free:
            for _ in skipped:
                for label in labels_per_image:
                    free(label)
        if not planned:
            return {}
        labels = {p.unit: p.label for p in planned}
        work = UnitWork(self.work_model, {p.unit: p.task for p in planned})
        report = (lambda unit, cached: (free if cached else progress)(labels[unit])) if progress else None
        return self.engine.run(work, [p.unit for p in planned], self.store, report)

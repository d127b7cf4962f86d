"""What every explainer shares: the `explain` contract, target resolution and cost accounting."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..errors import InputShapeError
from ..explanation import Explanation
from ..io import to_uint8
from ..models import Classifier


@dataclass(frozen=True)
class RunControl:
    """How a run is carried out, never what it computes: whether it shows progress and where a long
    optimisation keeps its resumable state. Not part of a result's settings, so changing it never makes a
    stored result look different."""

    progress: bool = False
    checkpoint_dir: Path | None = None


#: The default run control (no progress, no checkpoints), shared as a default argument.
DEFAULT_RUN = RunControl()


class Explainer(ABC):
    """An explanation method. Construct it with its settings, then call :meth:`explain` on images.

    Explainers are stateless between calls: everything an explanation depends on is in the constructor
    arguments (recorded in ``Explanation.settings``) and the ``explain`` arguments. Subclasses implement
    :meth:`explain_one`; those that can share model passes across images also override :meth:`explain_batch`.
    """

    name: ClassVar[str]
    #: constructor settings that change how a result is computed, never the result (left out of the keys
    #: under which evaluations store results, so changing them reuses what is stored)
    neutral_settings: ClassVar[tuple[str, ...]] = ()

    def explain(self, clf: Classifier, images: torch.Tensor | Sequence[torch.Tensor],
                target: int | str | None | Sequence[int | str | None] = None, *, progress: bool = False,
                checkpoint_dir: str | Path | None = None) -> Explanation | list[Explanation]:
        """Explain ``clf``'s score for ``target`` (default: its prediction) on one ``(3,H,W)`` image, or on each
        image of a ``(B,3,H,W)`` batch or a list (then ``target`` may be one value per image, and a list comes
        back). ``progress`` and ``checkpoint_dir`` control the run, not its result."""
        run = RunControl(bool(progress), Path(checkpoint_dir) if checkpoint_dir is not None else None)
        # One switch of a user's module into inference state for the whole call (restored on exit).
        with clf.inference_state():
            if isinstance(images, torch.Tensor) and images.dim() == 3:
                return with_image(self.explain_one(clf, images, target, run), images)
            batch = list(images)
            targets = list(target) if isinstance(target, (list, tuple)) else [target] * len(batch)
            if len(targets) != len(batch):
                raise InputShapeError(f"{len(targets)} targets for {len(batch)} images: give one per image or "
                                      "one for all")
            results = self.explain_batch(clf, batch, targets, run)
        return [with_image(e, image) for e, image in zip(results, batch)]

    @abstractmethod
    def explain_one(self, clf: Classifier, image: torch.Tensor, target: int | str | None = None,
                    run: RunControl = DEFAULT_RUN) -> Explanation:
        """Explain ``clf``'s score for ``target`` (default: its prediction) on one ``(3,H,W)`` image."""

    def explain_batch(self, clf: Classifier, images: list[torch.Tensor], targets: list[int | str | None],
                      run: RunControl = DEFAULT_RUN) -> list[Explanation]:
        """Explain each image; methods that can batch model passes across images override this."""
        return [self.explain_one(clf, image, t, run) for image, t in zip(images, targets)]

    def figure(self, image: torch.Tensor, explanation: Explanation, predicted: tuple[str, float] | None = None):
        """The figure the CLI saves for this method: photo and saliency overlay by default.

        Methods with a better picture of themselves (a cartoon, an order heatmap) override this.
        """
        from ..viz import explanation_figure

        return explanation_figure(image, explanation, predicted)

    def settings(self) -> dict[str, Any]:
        """The constructor settings, for the record."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def result_settings(self) -> dict[str, Any]:
        """The settings a result depends on: :meth:`settings` less :attr:`neutral_settings`."""
        return {k: v for k, v in self.settings().items() if k not in self.neutral_settings}


def with_image(explanation: Explanation, image: torch.Tensor) -> Explanation:
    """Keep the explained picture on the explanation (as ``(H,W,3)`` uint8), for :meth:`Explanation.plot`."""
    if explanation.image is None and isinstance(image, torch.Tensor) and image.dim() in (3, 4):
        explanation.image = to_uint8(image.reshape(-1, *image.shape[-3:])[0])
    return explanation


def same_size_chunks(images: Sequence[torch.Tensor], size: int) -> Iterator[list[int]]:
    """Indices of ``images`` in chunks of at most ``size`` images of one shape, for batched model passes
    (a list may mix sizes; each chunk can be stacked)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(tuple(image.shape[-3:]), []).append(i)
    for indices in groups.values():
        for start in range(0, len(indices), max(1, size)):
            yield indices[start:start + max(1, size)]


def share_cost(meter: CostMeter, count: int) -> dict[str, float]:
    """One image's share of a batched computation's cost (each image is one pass per batched pass)."""
    return {"seconds": meter.seconds / max(1, count), "passes": meter.passes / max(1, count)}


class CostMeter:
    """Measures wall time and model passes of a block of work on one classifier."""

    def __init__(self, clf: Classifier) -> None:
        self.clf = clf
        self.seconds = 0.0
        self.passes = 0

    @contextmanager
    def measure(self) -> Iterator[CostMeter]:
        start_t, start_p = time.perf_counter(), self.clf.passes
        try:
            yield self
        finally:
            self.seconds += time.perf_counter() - start_t
            self.passes += self.clf.passes - start_p

    def as_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds, "passes": float(self.passes)}


def single_image(clf: Classifier, image: torch.Tensor) -> torch.Tensor:
    """Validate one ``(3,H,W)`` picture (a batch of one is accepted) and move it to the model's device."""
    batch = clf.check_images(image)
    if batch.shape[0] != 1:
        raise InputShapeError(f"explain takes one image (3,H,W); got a batch of {batch.shape[0]}")
    return batch[0].to(clf.device)


def resolve_target(clf: Classifier, logits: torch.Tensor, target: int | str | None) -> tuple[int, float]:
    """The checked target (the prediction when None) and its clean probability, from clean-image logits."""
    target = int(logits[0].argmax()) if target is None else clf.check_target(target)
    return target, float(logits.float().softmax(1)[0, target])

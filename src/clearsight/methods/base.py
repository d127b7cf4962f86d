"""What every explainer shares: the `explain` contract, target resolution and cost accounting."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch

from ..errors import InputShapeError
from ..explanation import Explanation
from ..models import Classifier


class Explainer(ABC):
    """An explanation method. Construct it with its settings, then call :meth:`explain` per image.

    Explainers are stateless between calls: everything an explanation depends on is in the constructor
    arguments (recorded in ``Explanation.settings``) and the ``explain`` arguments.
    """

    name: ClassVar[str]

    @abstractmethod
    def explain(self, clf: Classifier, image: torch.Tensor, target: int | str | None = None) -> Explanation:
        """Explain ``clf``'s score for ``target`` (default: its prediction) on one ``(3,H,W)`` image."""

    def figure(self, image: torch.Tensor, explanation: Explanation, predicted: tuple[str, float] | None = None):
        """The figure the CLI saves for this method: photo and saliency overlay by default.

        Methods with a better picture of themselves (a cartoon, an order heatmap) override this.
        """
        from ..viz import explanation_figure

        return explanation_figure(image, explanation, predicted)

    def settings(self) -> dict[str, Any]:
        """The constructor settings, for the record."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


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

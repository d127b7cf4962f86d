"""The greedy search MoXI and its class-discriminative deletion share (paper Algorithms 1 and 2).

At each step every remaining patch is scored in one batch and the best one is taken; stop rules say when
an explanation is complete. :mod:`clearsight.methods.moxi` and :mod:`clearsight.methods.discriminative` both
build on it, so neither imports the other at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from ..errors import MethodError
from ..parts import PatchGame

Mode = Literal["insertion", "deletion"]
StopRule = Callable[[torch.Tensor], bool]


@dataclass
class GreedyResult:
    """What a greedy run produced; ``scores[k]`` etc. describe the set after step k+1."""

    order: torch.Tensor  # (n,) patch indices, in the order chosen
    scores: torch.Tensor  # (n,) game value after each step
    predictions: torch.Tensor  # (n,) predicted class after each step
    probabilities: torch.Tensor  # (n,) probability of the game's target after each step
    stop: int | None  # steps until the stop rule first held (1-based), None if it never did
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def check_mode(mode: str) -> Mode:
    if mode not in ("insertion", "deletion"):
        raise MethodError(f"MoXI mode must be 'insertion' or 'deletion'; got {mode!r}")
    return mode  # type: ignore[return-value]


def coalition_after(selected: torch.Tensor, mode: Mode) -> torch.Tensor:
    """Keep-mask of the image once the ``selected`` patches were inserted (insertion) / deleted (deletion)."""
    return selected if mode == "insertion" else ~selected


def success_rule(target: int, tau: float = 0.0) -> StopRule:
    """Insertion stop: the target is predicted with probability at least ``tau``."""
    def rule(logits: torch.Tensor) -> bool:
        probs = logits.float().softmax(-1)
        return int(probs.argmax()) == target and float(probs[target]) >= tau
    return rule


def failure_rule(target: int) -> StopRule:
    """Deletion stop: the target is no longer predicted."""
    return lambda logits: int(logits.argmax()) != target


def prediction_rule(target: int) -> StopRule:
    """Stop once ``target`` becomes the prediction (phase 1 of class-discriminative deletion)."""
    return lambda logits: int(logits.argmax()) == target


def greedy(game: PatchGame, mode: Mode, stop_rule: StopRule | None = None, full_order: bool = False,
           start: torch.Tensor | None = None, max_steps: int | None = None,
           progress: Callable[[int], object] | None = None) -> GreedyResult:
    """Algorithms 1 and 2: at each step, score every remaining candidate in one batch and take the best.

    ``start`` is a ``(N,)`` boolean set of patches already inserted/deleted (class-discriminative phase 2
    continues from phase 1). The run stops when ``stop_rule`` first holds unless ``full_order``, after
    ``max_steps`` steps, or when no patch remains. ``progress(1)`` is called after every step.
    """
    n = game.num_players
    selected = torch.zeros(n, dtype=torch.bool, device=game.clf.device) if start is None else start.clone()
    order, scores, preds, probs = [], [], [], []
    stop: int | None = None
    limit = int((~selected).sum()) if max_steps is None else min(max_steps, int((~selected).sum()))
    for step in range(1, limit + 1):
        candidates = torch.nonzero(~selected).squeeze(1)  # ascending: ties go to the lowest index
        rows = selected.expand(candidates.numel(), n).clone()
        rows[torch.arange(candidates.numel()), candidates] = True
        values, logits = game.evaluate(coalition_after(rows, mode))
        best = int(values.argmax() if mode == "insertion" else values.argmin())
        chosen = int(candidates[best])
        selected[chosen] = True
        order.append(chosen)
        scores.append(float(values[best]))
        preds.append(int(logits[best].argmax()))
        probs.append(float(logits[best].float().softmax(-1)[game.target]))
        if progress is not None:
            progress(1)
        if stop is None and stop_rule is not None and stop_rule(logits[best]):
            stop = step
            if not full_order:
                break
    return GreedyResult(torch.tensor(order, dtype=torch.long), torch.tensor(scores), torch.tensor(preds),
                        torch.tensor(probs), stop)

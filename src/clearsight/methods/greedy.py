"""The greedy search MoXI and its class-discriminative deletion share (paper Algorithms 1 and 2).

At each step every remaining patch is scored in one batch and the best one is taken; stop rules say when
an explanation is complete. :mod:`clearsight.methods.moxi` and :mod:`clearsight.methods.discriminative` both
build on it, so neither imports the other at module level. Several photos' searches run in lockstep and share
model passes (:func:`greedy_together`); a :class:`Screening` scores each step in bf16 first and re-scores in
fp32 only the candidates that could be the best (the fp32 pick, with less fp32 work when they are far apart).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from ..errors import MethodError
from ..parts import PatchGame, evaluate_together

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
    screening: dict[str, float] | None = None  # Screening.record() when the steps were screened


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


@dataclass
class Screening:
    """Exact greedy steps scored at a lower precision first: every candidate is scored by ``cheap`` (the same
    game with a bfloat16 token encoder), and only those whose cheap value lies within ``bound`` of the cheap
    best are scored again at full precision; the best of those is the step's pick.

    ``bound`` bounds the *spread* of the cheap values' errors within one step (max - min of cheap - fp32 over
    its candidates): candidate i can beat the cheap best b in fp32 only if ``cheap(i) >= cheap(b) - bound``
    (insertion), so the pick is the fp32 pick whenever the bound holds (up to float rounding: a row's fp32
    value in a smaller batch may differ in its last bit, which decides only exact near-ties, as in any
    re-batching). It is measured on the photo itself
    (:func:`calibrate_bound`) and checked at every step on the re-scored candidates: if their errors spread
    wider, that step is scored in fp32 throughout (counted in ``fallbacks``).

    Measured on DeiT-Tiny (``benchmarks/moxi_ceiling.py``): bf16's errors (about 0.05-0.1 in log-odds) are of
    the order of the differences between a deletion step's candidates, so nearly every candidate is re-scored;
    an insertion step re-scores about 40-70%. Screening is therefore an option (``MoXI(screen="bf16")``), not
    the default: it pays only where bf16 is native and the candidates' values are far apart.
    """

    cheap: PatchGame
    bound: float
    candidates: int = 0  # candidates scored cheaply
    rescored: int = 0  # of those, scored again at full precision
    fallbacks: int = 0  # steps scored in full precision throughout (the bound failed its check)

    def record(self) -> dict[str, float]:
        """What the explanation records about the screening (how much fp32 work it saved)."""
        return {"screen_bound": self.bound, "screen_rescored": self.rescored / max(1, self.candidates),
                "screen_fallbacks": self.fallbacks}


def calibrate_bound(game: PatchGame, cheap: PatchGame, mode: Mode, groups: int = 8, per_group: int = 16,
                    safety: float = 2.0, seed: int = 0) -> float:
    """``safety`` x the widest spread of ``cheap - game`` values within a step-like group: a seeded random set
    of size spread over 1..N-1 with up to ``per_group`` candidates each inserted (deleted) in turn."""
    n = game.num_players
    generator = torch.Generator().manual_seed(seed)
    rows, owners = [], []
    for g, size in enumerate(torch.linspace(1, n - 1, groups).round().long().tolist()):
        order = torch.randperm(n, generator=generator)
        base, others = order[:size], order[size:][:per_group]
        selected = torch.zeros(n, dtype=torch.bool)
        selected[base] = True
        for b in others.tolist():
            row = selected.clone()
            row[b] = True
            rows.append(coalition_after(row, mode))
            owners.append(g)
    keep = torch.stack(rows).to(game.clf.device)
    error = (cheap.value(keep) - game.value(keep)).cpu()
    owner = torch.tensor(owners)
    spread = max(float(error[owner == g].max() - error[owner == g].min()) for g in torch.unique(owner).tolist())
    return spread * safety


class _Search:
    """One image's greedy search: the patches taken so far and what each step scored."""

    def __init__(self, game: PatchGame, mode: Mode, stop_rule: StopRule | None, full_order: bool,
                 start: torch.Tensor | None, max_steps: int | None, screen: Screening | None = None) -> None:
        self.game, self.mode, self.stop_rule, self.full_order = game, mode, stop_rule, full_order
        self.screen = screen
        n = game.num_players
        self.selected = torch.zeros(n, dtype=torch.bool, device=game.clf.device) if start is None else start.clone()
        remaining = int((~self.selected).sum())
        self.limit = remaining if max_steps is None else min(max_steps, remaining)
        self.order: list[int] = []
        self.scores: list[float] = []
        self.preds: list[int] = []
        self.probs: list[float] = []
        self.stop: int | None = None
        self.done = self.limit == 0

    def candidates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The remaining patches (ascending: ties go to the lowest index) and the coalitions to score."""
        candidates = torch.nonzero(~self.selected).squeeze(1)
        rows = self.selected.expand(candidates.numel(), self.selected.numel()).clone()
        rows[torch.arange(candidates.numel()), candidates] = True
        return candidates, coalition_after(rows, self.mode)

    def take(self, candidates: torch.Tensor, values: torch.Tensor, logits: torch.Tensor) -> None:
        """Take the best candidate and decide whether the search is over."""
        best = int(values.argmax() if self.mode == "insertion" else values.argmin())
        chosen = int(candidates[best])
        self.selected[chosen] = True
        self.order.append(chosen)
        self.scores.append(float(values[best]))
        self.preds.append(int(logits[best].argmax()))
        self.probs.append(float(logits[best].float().softmax(-1)[self.game.target]))
        step = len(self.order)
        if self.stop is None and self.stop_rule is not None and self.stop_rule(logits[best]):
            self.stop = step
            self.done = not self.full_order
        self.done = self.done or step >= self.limit

    def result(self) -> GreedyResult:
        return GreedyResult(torch.tensor(self.order, dtype=torch.long), torch.tensor(self.scores),
                            torch.tensor(self.preds), torch.tensor(self.probs), self.stop)


def greedy(game: PatchGame, mode: Mode, stop_rule: StopRule | None = None, full_order: bool = False,
           start: torch.Tensor | None = None, max_steps: int | None = None,
           progress: Callable[[int], object] | None = None) -> GreedyResult:
    """Algorithms 1 and 2: at each step, score every remaining candidate in one batch and take the best.

    ``start`` is a ``(N,)`` boolean set of patches already inserted/deleted (class-discriminative phase 2
    continues from phase 1). The run stops when ``stop_rule`` first holds unless ``full_order``, after
    ``max_steps`` steps, or when no patch remains. ``progress(1)`` is called after every step.
    """
    return greedy_together([game], mode, [stop_rule], full_order, [start], max_steps, progress)[0]


def greedy_together(games: Sequence[PatchGame], mode: Mode, stop_rules: Sequence[StopRule | None],
                    full_order: bool = False, starts: Sequence[torch.Tensor | None] | None = None,
                    max_steps: int | None = None, progress: Callable[[int], object] | None = None,
                    screens: Sequence[Screening] | None = None) -> list[GreedyResult]:
    """:func:`greedy` on several images in lockstep: step k of every unfinished search is scored in shared
    model passes (:func:`~clearsight.parts.game.evaluate_together`), so the small early batches of insertion
    fill the model's passes. Each result equals that image's own :func:`greedy`. ``progress(1)`` is called
    after each image's step. ``screens`` (one per game) scores each step cheaply first (:class:`Screening`)."""
    if len(stop_rules) != len(games):
        raise MethodError(f"{len(stop_rules)} stop rules for {len(games)} games")
    if screens is not None and len(screens) != len(games):
        raise MethodError(f"{len(screens)} screenings for {len(games)} games")
    starts = list(starts) if starts is not None else [None] * len(games)
    searches = [_Search(g, mode, rule, full_order, start, max_steps, screen)
                for g, rule, start, screen in zip(games, stop_rules, starts, screens or [None] * len(games))]
    while active := [s for s in searches if not s.done]:
        planned = [s.candidates() for s in active]
        if screens is None:
            scored = [(c, v, lg) for (c, _), (v, lg) in
                      zip(planned, evaluate_together([s.game for s in active], [rows for _, rows in planned]))]
        else:
            scored = screened_step(active, planned, mode)
        for search, (candidates, values, logits) in zip(active, scored):
            search.take(candidates, values, logits)
            if progress is not None:
                progress(1)
    results = [s.result() for s in searches]
    for result, search in zip(results, searches):
        result.screening = search.screen.record() if search.screen is not None else None
    return results


def screened_step(searches: list[_Search], planned: list[tuple[torch.Tensor, torch.Tensor]], mode: Mode
                  ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One step of :class:`Screening` for searches that all have one: (candidates, values, logits) per search,
    restricted to the candidates re-scored at full precision (ascending, so ties still go to the lowest index)."""
    screens = [s.screen for s in searches]
    assert all(sc is not None for sc in screens)
    cheap = evaluate_together([sc.cheap for sc in screens], [rows for _, rows in planned])  # type: ignore[union-attr]
    near = []
    for sc, (values, _) in zip(screens, cheap):
        finite = torch.isfinite(values)  # a bf16 overflow is re-scored whatever its value
        if not bool(finite.any()):
            near.append(torch.arange(values.numel(), device=values.device))
            continue
        if mode == "insertion":
            close = values >= values[finite].max() - sc.bound
        else:
            close = values <= values[finite].min() + sc.bound
        near.append(torch.nonzero(close | ~finite).squeeze(1))
    exact = evaluate_together([s.game for s in searches], [rows[idx] for (_, rows), idx in zip(planned, near)])
    out = []
    for search, sc, (candidates, rows), idx, (values, _), (full, logits) in zip(searches, screens, planned, near,
                                                                                 cheap, exact):
        sc.candidates += candidates.numel()
        sc.rescored += idx.numel()
        cheap_values = values[idx].to(full.dtype)
        error = (cheap_values - full)[torch.isfinite(cheap_values)]
        if error.numel() and float(error.max() - error.min()) > sc.bound:
            sc.fallbacks += 1
            full, logits = search.game.evaluate(rows)
            out.append((candidates, full, logits))
        else:
            out.append((candidates[idx.to(candidates.device)], full, logits))
    return out

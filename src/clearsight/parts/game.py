"""`PatchGame`: the cooperative game over image patches that MoXI, Shapley sampling and the curves share.

``value(coalitions)`` scores a batch of kept-patch sets: it groups them by size (token dropping needs equal
lengths within a chunk), cuts each group into memory-bounded chunks, runs them under
``torch.inference_mode`` and counts model passes. What absence means and what is scored are arguments,
so every method above it stays ignorant of both.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence

import torch

from ..scores import ScoreFn, get_score
from .absence import Absence, make_absence
from .grid import PatchGrid


class PatchGame:
    """Players = the patches of ``grid``; value of a coalition = ``score(logits, target)`` with the other
    patches absent.

    Args:
        clf: the classifier (``Classifier`` or ``TokenClassifier``).
        image: one ``(3,H,W)`` image in [0,1].
        target: the class whose score is the value.
        score: ``log-odds`` (default, MoXI's reward), ``probability``, ``log-probability``, ``logit`` or a
            callable ``(logits, target) -> (B,)``.
        absence: an :class:`Absence`, a name understood by :func:`make_absence`, or None for the default
            (token dropping for ViTs, mean fill otherwise).
        grid: the players; default: the model's patch grid (16-pixel patches for CNNs).
    """

    def __init__(self, clf, image: torch.Tensor, target: int, score: str | ScoreFn = "log-odds",
                 absence: Absence | str | None = None, grid: PatchGrid | None = None) -> None:
        self.clf = clf
        self.image = image.to(clf.device)
        self.target = int(target)
        self.score = get_score(score)
        self.grid = grid or PatchGrid.for_classifier(clf)
        self.absence = make_absence(absence, clf)
        self.bound = self.absence.bind(clf, self.image, self.grid)
        self.passes = 0

    @property
    def num_players(self) -> int:
        return self.grid.size

    def with_score(self, score: str | ScoreFn, target: int | None = None) -> PatchGame:
        """The same game (same bound absence, no recomputation) with another score or target.

        Passes of the copy are counted on the copy; the classifier counts them all.
        """
        other = copy.copy(self)
        other.score = get_score(score)
        other.target = self.target if target is None else int(target)
        other.passes = 0
        return other

    # ------------------------------------------------------------------------------------- coalitions
    def full(self, rows: int = 1) -> torch.Tensor:
        """Keep-masks keeping every patch."""
        return torch.ones(rows, self.num_players, dtype=torch.bool, device=self.clf.device)

    def empty(self, rows: int = 1) -> torch.Tensor:
        """Keep-masks keeping no patch."""
        return torch.zeros(rows, self.num_players, dtype=torch.bool, device=self.clf.device)

    def coalitions(self, sets: Iterable[Sequence[int]]) -> torch.Tensor:
        """Keep-masks ``(B,N)`` from lists of kept patch indices."""
        sets = list(sets)
        keep = self.empty(len(sets))
        for row, members in enumerate(sets):
            keep[row, torch.as_tensor(list(members), dtype=torch.long)] = True
        return keep

    # ----------------------------------------------------------------------------------- evaluation
    def logits(self, coalitions: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,C)`` for keep-masks ``(B,N)``, in memory-bounded chunks of equal-size coalitions."""
        keep = self.grid.check_coalitions(coalitions).to(self.clf.device)
        out = chunked_logits(keep, self.bound.chunk_rows, lambda rows: self.bound.logits(keep[rows]))
        self.passes += keep.shape[0]
        return out

    def values_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return self.score(logits, self.target).float()

    def value(self, coalitions: torch.Tensor) -> torch.Tensor:
        """Scores ``(B,)`` of keep-masks ``(B,N)``."""
        return self.values_from_logits(self.logits(coalitions))

    def evaluate(self, coalitions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``(B,)`` and logits ``(B,C)`` of keep-masks ``(B,N)``, from the same passes."""
        logits = self.logits(coalitions)
        return self.values_from_logits(logits), logits


def chunked_logits(keep: torch.Tensor, chunk_rows: Callable[[int], int],
                   run: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Logits ``(B,C)`` for keep-masks ``(B,N)``: rows grouped by coalition size (token dropping needs equal
    lengths within a chunk), each group cut into chunks of ``chunk_rows(size)`` rows, ``run(row indices)``
    giving each chunk's logits, all under ``torch.inference_mode``."""
    sizes = keep.sum(1)
    out: torch.Tensor | None = None
    with torch.inference_mode():
        for size in torch.unique(sizes).tolist():
            rows = torch.nonzero(sizes == size).squeeze(1)
            step = chunk_rows(int(size))
            for start in range(0, rows.numel(), step):
                idx = rows[start:start + step]
                logits = run(idx)
                if out is None:
                    out = logits.new_empty(keep.shape[0], logits.shape[1])
                out[idx] = logits
    assert out is not None, "no coalitions given"
    return out


def shareable(games: Sequence[PatchGame]) -> bool:
    """Whether the games' coalitions can share model passes: one classifier, one grid, one absence."""
    first = games[0]
    return all(g.clf is first.clf and g.grid == first.grid and type(g.bound) is type(first.bound)
               and g.absence.describe() == first.absence.describe() for g in games)


def evaluate_together(games: Sequence[PatchGame], coalitions: Sequence[torch.Tensor]
                      ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """:meth:`PatchGame.evaluate` of several games (one image each) at once: a chunk may hold coalitions of
    several images, so that small batches (early insertion steps, MoXI(-)'s single patches) fill the model's
    passes. Each game's values, logits and pass count are what its own ``evaluate`` gives (a row's numbers do
    not depend on its neighbours in the batch). Games that cannot share (different models, grids or
    absences) are evaluated apart."""
    games = list(games)
    if len(games) != len(coalitions):
        raise ValueError(f"{len(coalitions)} coalition sets for {len(games)} games")
    if len(games) == 1 or not shareable(games):
        return [g.evaluate(c) for g, c in zip(games, coalitions)]
    first = games[0]
    keeps = [g.grid.check_coalitions(c).to(first.clf.device) for g, c in zip(games, coalitions)]
    keep = torch.cat(keeps)
    owner = torch.cat([torch.full((k.shape[0],), i, dtype=torch.long, device=keep.device)
                       for i, k in enumerate(keeps)])
    bounds = [g.bound for g in games]
    logits = chunked_logits(keep, first.bound.chunk_rows,
                            lambda rows: type(first.bound).logits_across(bounds, keep[rows], owner[rows]))
    out, start = [], 0
    for game, k in zip(games, keeps):
        part = logits[start:start + k.shape[0]]
        start += k.shape[0]
        game.passes += k.shape[0]
        out.append((game.values_from_logits(part), part))
    return out

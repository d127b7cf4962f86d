"""`PatchGame`: the cooperative game over image patches that MoXI, Shapley sampling and the curves share.

``value(coalitions)`` scores a batch of kept-patch sets: it groups them by size (token dropping needs equal
lengths within a chunk), cuts each group into memory-bounded chunks, runs them under
``torch.inference_mode`` and counts model passes. What absence means and what is scored are arguments,
so every method above it stays ignorant of both.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

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
        sizes = keep.sum(1)
        out: torch.Tensor | None = None
        with torch.inference_mode():
            for size in torch.unique(sizes).tolist():
                rows = torch.nonzero(sizes == size).squeeze(1)
                step = self.bound.chunk_rows(int(size))
                for start in range(0, rows.numel(), step):
                    idx = rows[start:start + step]
                    logits = self.bound.logits(keep[idx])
                    if out is None:
                        out = logits.new_empty(keep.shape[0], logits.shape[1])
                    out[idx] = logits
                    self.passes += idx.numel()
        assert out is not None, "no coalitions given"
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

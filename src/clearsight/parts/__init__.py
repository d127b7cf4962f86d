"""The game over image patches: players (`PatchGrid`), absence (`TokenDrop`, `Fill`, `Replace`, `AttentionMask`) and
the batched, memory-bounded coalition evaluator (`PatchGame`) that MoXI, Shapley sampling and the
insertion/deletion curves share."""

from .absence import (
    DEFAULT_MAX_TOKENS,
    Absence,
    AttentionMask,
    BoundAbsence,
    Fill,
    Replace,
    TokenDrop,
    default_absence,
    make_absence,
)
from .game import PatchGame
from .grid import PatchGrid

__all__ = [
    "DEFAULT_MAX_TOKENS", "Absence", "AttentionMask", "BoundAbsence", "Fill", "PatchGame", "PatchGrid",
    "Replace", "TokenDrop", "default_absence", "make_absence",
]

"""What the methods take apart and how absence is realised.

The game over image patches: players (`PatchGrid`), absence (`TokenDrop`, `Fill`, `Replace`, `AttentionMask`) and
the batched, memory-bounded coalition evaluator (`PatchGame`) that MoXI, Shapley sampling and the
insertion/deletion curves share; and the coefficient bands of the rate-distortion explanations
(`PixelRepresentation`, `WaveletRepresentation`) with their adaptive-noise obfuscation (`NoiseModel`,
`obfuscate`, `l2_distortion`), which CartoonX, Pixel RDE and the rate-distortion curves share."""

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
from .game import PatchGame, evaluate_together
from .grid import PatchGrid
from .obfuscation import NoiseModel, l2_distortion, obfuscate
from .representations import PixelRepresentation, Representation, WaveletRepresentation, representation_from_settings

__all__ = [
    "DEFAULT_MAX_TOKENS", "Absence", "AttentionMask", "BoundAbsence", "Fill", "NoiseModel", "PatchGame", "PatchGrid",
    "PixelRepresentation", "Replace", "Representation", "TokenDrop", "WaveletRepresentation", "default_absence",
    "evaluate_together", "l2_distortion", "make_absence", "obfuscate", "representation_from_settings",
]

"""Checkpoints of long optimisations, so an interrupted run resumes instead of starting over.

The paper preset of CartoonX runs for hours on a CPU; a Ctrl-C, a closed laptop or a cluster's time limit
must not throw that away. A :class:`RunCheckpoint` is one file per run, named by a fingerprint of
everything that decides the result (method settings, model, target, the image's exact pixels), so a run
with other settings or on another photo never picks up a stranger's state. Files are written atomically
(a crash mid-write leaves the previous checkpoint intact) and read with ``weights_only=True``; a file that
cannot be read is ignored with a warning and the run starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .explanation import atomic_write


def pixel_digest(image: torch.Tensor) -> str:
    """A short fingerprint of an image tensor's exact values (shape included), to tell photos apart."""
    array = np.ascontiguousarray(image.detach().cpu().float().numpy())
    return hashlib.sha256(str(array.shape).encode() + array.tobytes()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """A short fingerprint of a file's bytes, to tell apart two files that share a name."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def fingerprint(description: dict[str, Any]) -> str:
    """A stable digest of a JSON-able description (keys sorted; unknown objects by ``str``)."""
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunCheckpoint:
    """The resumable state of one run, kept in ``folder/<prefix>-<fingerprint>.pt``."""

    def __init__(self, folder: str | Path, prefix: str, description: dict[str, Any]) -> None:
        self.key = fingerprint(description)
        self.path = Path(folder) / f"{prefix}-{self.key}.pt"

    def load(self) -> dict[str, Any] | None:
        """The saved state of this run, or None when there is none (or it cannot be read)."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, weights_only=True, map_location="cpu")
        except Exception as err:  # a damaged or foreign file: never fatal, the run just starts over
            warnings.warn(f"ignoring unreadable checkpoint {self.path}: {err}", stacklevel=2)
            return None
        if not isinstance(state, dict) or state.get("fingerprint") != self.key:
            warnings.warn(f"ignoring checkpoint {self.path}: it belongs to another run", stacklevel=2)
            return None
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Replace the saved state atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, lambda f: torch.save({**state, "fingerprint": self.key}, f))

    def discard(self) -> None:
        """Forget the run (its result is saved elsewhere now)."""
        self.path.unlink(missing_ok=True)

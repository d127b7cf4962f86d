"""Figures: overlays, explanation figures, curves.

Importing this package loads no plotting module and never switches matplotlib's backend (a notebook's
inline backend or a user's GUI backend stays as it is); each helper is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"explanation_figure": "overlay", "overlay": "overlay", "save_figure": "overlay"}

__all__ = ["explanation_figure", "overlay", "save_figure"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        # Loading the submodule ``overlay`` binds the package attribute ``overlay`` to it: rebind the
        # functions, as the former eager ``from .overlay import overlay`` did.
        for other, where in _LAZY.items():
            if where == _LAZY[name]:
                globals()[other] = getattr(module, other)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

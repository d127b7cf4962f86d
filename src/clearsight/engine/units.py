"""The unit of work of every evaluation and reproduction, and the store that keeps finished units.

A :class:`Unit` names everything its result depends on: the experiment (``insertion``, ``rate-distortion``, ...),
the image (a unique name), the method (``moxi``, ``cartoonx-lambda4``, ...) and ``settings`` (model and weights
digest, image pixels digest, target, the method's options, the curve's parameters). Its :meth:`Unit.key` is a
digest of all four, so a unit with any other setting is another unit with another file: two different results
never share a name, and nothing made differently is ever reused.

:class:`UnitStore` keeps one ``.npz`` per finished unit, written atomically (a kill mid-write leaves no file,
never half of one), with the unit itself recorded inside: a file whose recorded key differs (a digest
collision, a hand-copied file) is not taken as finished. Engines write through one store object on the
driver, so each unit is stored once however often it was computed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..explanation import atomic_write


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces; objects JSON does not know are written by ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def safe_name(text: str, limit: int = 60) -> str:
    """``text`` (a photo's, method's or model's name) as a file name: characters other than letters, digits and
    ``._-`` become ``_``, at most ``limit`` of them."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:limit] or "_"


@dataclass(frozen=True)
class Unit:
    """One thing to compute: ``experiment`` on ``image`` with ``method`` under ``settings``.

    ``settings`` is kept as canonical JSON text so that a unit is hashable and travels to other processes
    unchanged; :attr:`options` gives it back as a dict.
    """

    experiment: str
    image: str
    method: str
    settings_json: str = "{}"

    @classmethod
    def make(cls, experiment: str, image: str, method: str, settings: Mapping[str, Any] | None = None) -> Unit:
        return cls(experiment, image, method, canonical_json(dict(settings or {})))

    @property
    def options(self) -> dict[str, Any]:
        return json.loads(self.settings_json)

    def key(self) -> str:
        """A digest of everything the result depends on (hex, 24 characters)."""
        text = canonical_json([self.experiment, self.image, self.method, self.options])
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def describe(self) -> str:
        return f"{self.experiment}/{self.image}/{self.method}"


class Work(Protocol):
    """What an engine runs: picklable, so that Ray can ship it to its workers.

    :meth:`setup` makes the expensive shared context (load the model, read the photos) once per worker
    process, not once per unit; :meth:`compute` turns one unit into named arrays.
    """

    def setup(self) -> Any: ...

    def compute(self, context: Any, unit: Unit) -> dict[str, np.ndarray]: ...


class UnitStore:
    """Finished units under ``folder``: ``EXPERIMENT/IMAGE-h__METHOD-KEY.npz``, readable and unique."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, unit: Unit) -> Path:
        image_tag = hashlib.sha256(unit.image.encode()).hexdigest()[:6]  # names equal once made safe stay apart
        name = f"{safe_name(unit.image)}-{image_tag}__{safe_name(unit.method, 40)}-{unit.key()[:12]}.npz"
        return self.folder / safe_name(unit.experiment, 40) / name

    def __contains__(self, unit: Unit) -> bool:
        return self.load(unit) is not None

    def load(self, unit: Unit) -> dict[str, np.ndarray] | None:
        """The arrays of a finished unit, or None (absent, unreadable, or made for another unit)."""
        path = self.path(unit)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if "__unit__" not in data.files or str(data["__unit__"]) != unit.key():
                    return None
                return {k: data[k] for k in data.files if k not in ("__unit__", "__describe__")}
        except (OSError, ValueError, KeyError, EOFError):  # a damaged file is recomputed, never fatal
            return None

    def save(self, unit: Unit, arrays: Mapping[str, Any]) -> Path:
        """Keep a finished unit atomically; returns its path."""
        path = self.path(unit)
        path.parent.mkdir(parents=True, exist_ok=True)
        stored = {k: np.asarray(v) for k, v in arrays.items()}
        stored["__unit__"] = np.asarray(unit.key())
        stored["__describe__"] = np.asarray(canonical_json([unit.experiment, unit.image, unit.method,
                                                            unit.options]))
        atomic_write(path, lambda f: np.savez(f, **stored))
        return path

    def finished(self) -> list[Path]:
        """Every stored unit file (for counting and tests)."""
        return sorted(self.folder.glob("*/*.npz")) if self.folder.is_dir() else []

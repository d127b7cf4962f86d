"""`Explanation`: the one result type every method returns, and its safe on-disk form.

An explanation is a saliency map plus whatever the method produced along the way (a patch order, a mask,
a cartoon image, a loss history) and what it cost. It is saved as two files side by side, ``NAME.npz``
(arrays, loaded with ``allow_pickle=False``) and ``NAME.json`` (everything else), never as a pickle, so a
result can be inspected by hand and loaded without trusting its author. Both are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


@dataclass
class Explanation:
    """What a method says about one image and one target class.

    Attributes:
        method: method name, e.g. ``"gradcam"``.
        target: the explained class index; ``target_name`` its name.
        saliency: ``(H,W)`` float map at the model's input size, larger = more important.
        model: the model spec that was explained.
        score: the model's probability of ``target`` on the clean image.
        order: patch indices in the order a greedy method chose them (MoXI), or by descending saliency.
        order_scores: the method's score after each step of ``order``.
        mask: named mask arrays (e.g. ``{"yl": ..., "yh0": ...}`` for CartoonX, ``{"pixels": ...}``).
        cartoon: a rendered explanation image (``(H,W)`` or ``(H,W,3)``), e.g. CartoonX's cartoon.
        history: per-step curves (loss, distortion, sparsity) of an optimiser.
        arrays: any other named arrays a method wants to keep (raw maps at grid resolution, ...).
        cost: ``{"seconds": ..., "passes": ...}``; passes = images pushed through the model.
        settings: the method's settings, so the result can be reproduced.
        image: the explained picture as ``(H,W,3)`` uint8 (set by ``Explainer.explain``), for :meth:`plot`.

    In a notebook an explanation shows itself as its overlay figure (``_repr_png_``); ``print`` shows one line.
    """

    method: str
    target: int
    saliency: np.ndarray
    model: str = ""
    target_name: str = ""
    score: float | None = None
    order: np.ndarray | None = None
    order_scores: np.ndarray | None = None
    mask: dict[str, np.ndarray] = field(default_factory=dict)
    cartoon: np.ndarray | None = None
    history: dict[str, np.ndarray] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    image: np.ndarray | None = None

    # ------------------------------------------------------------------------------------------ display
    def __repr__(self) -> str:
        shape = tuple(np.shape(self.saliency))
        parts = [f"method={self.method!r}"]
        if self.model:
            parts.append(f"model={self.model!r}")
        parts.append(f"target={self.target}" + (f" ({self.target_name!r})" if self.target_name else ""))
        if self.score is not None:
            parts.append(f"score={self.score:.4f}")
        parts.append(f"saliency={shape}")
        if self.cost:
            seconds, passes = self.cost.get("seconds"), self.cost.get("passes")
            cost = ", ".join(x for x in (f"{seconds:.3g} s" if seconds is not None else "",
                                         f"{passes:g} passes" if passes is not None else "") if x)
            parts.append(f"cost=({cost})")
        return f"Explanation({', '.join(parts)})"

    def title(self) -> str:
        """``"gradcam: tench (91.2%)"``: method, class and the model's probability of it."""
        prob = f" ({self.score:.1%})" if self.score is not None else ""
        return f"{self.method}: {self.target_name or self.target}{prob}"

    def plot(self, ax=None, cmap: str = "jet", alpha: float = 0.5):
        """Draw the saliency map over the explained picture (alone when the picture is unknown) on ``ax``,
        or on a new figure when ``ax`` is None; returns the axes.

        Only a new figure goes through pyplot (as any plotting call would); drawing on given axes touches no
        global matplotlib state, and the backend is never switched.
        """
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(4, 4.3))
        saliency = np.asarray(self.saliency, dtype=np.float32)
        if self.image is not None:
            ax.imshow(self.image)
            ax.imshow(saliency, cmap=cmap, alpha=alpha, extent=(-0.5, self.image.shape[1] - 0.5,
                                                                 self.image.shape[0] - 0.5, -0.5))
        else:
            ax.imshow(saliency, cmap=cmap)
        ax.set_title(self.title(), fontsize=10)
        ax.axis("off")
        return ax

    def _repr_png_(self) -> bytes:
        """PNG bytes of :meth:`plot`'s figure, for Jupyter. Made with a bare ``Figure`` (no pyplot), so it
        neither opens a window, nor leaves a figure behind, nor changes the backend."""
        import io

        from matplotlib.figure import Figure

        fig = Figure(figsize=(4, 4.3))
        self.plot(ax=fig.add_subplot())
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    # ------------------------------------------------------------------------------------------ disk
    def _array_items(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"saliency": np.asarray(self.saliency)}
        if self.order is not None:
            out["order"] = np.asarray(self.order)
        if self.order_scores is not None:
            out["order_scores"] = np.asarray(self.order_scores)
        if self.cartoon is not None:
            out["cartoon"] = np.asarray(self.cartoon)
        if self.image is not None:
            out["image"] = np.asarray(self.image)
        for prefix, group in (("mask", self.mask), ("history", self.history), ("arrays", self.arrays)):
            for key, value in group.items():
                out[f"{prefix}/{key}"] = np.asarray(value)
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path.npz`` and ``path.json`` atomically; returns the npz path."""
        base = Path(path)
        if base.suffix in (".npz", ".json"):
            base = base.with_suffix("")
        base.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "method": self.method, "target": int(self.target), "target_name": self.target_name,
            "model": self.model, "score": None if self.score is None else float(self.score),
            "cost": {k: float(v) for k, v in self.cost.items()}, "settings": jsonable(self.settings),
            "format": "clearsight.explanation/1",
        }
        npz_path = base.with_name(base.name + ".npz")
        json_path = base.with_name(base.name + ".json")
        atomic_write(npz_path, lambda f: np.savez_compressed(f, **self._array_items()))
        atomic_write(json_path, lambda f: f.write(json.dumps(meta, indent=2).encode()))
        return npz_path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Explanation:
        """Read an explanation written by :meth:`save` (give either file or the common stem)."""
        base = Path(path)
        if base.suffix in (".npz", ".json"):
            base = base.with_suffix("")
        meta = json.loads(base.with_name(base.name + ".json").read_text())
        groups = read_npz_groups(base.with_name(base.name + ".npz"))
        plain = groups.get("", {})
        return cls(
            method=meta["method"], target=meta["target"], saliency=plain["saliency"], model=meta.get("model", ""),
            target_name=meta.get("target_name", ""), score=meta.get("score"), order=plain.get("order"),
            order_scores=plain.get("order_scores"), cartoon=plain.get("cartoon"), mask=groups.get("mask", {}),
            history=groups.get("history", {}), arrays=groups.get("arrays", {}), cost=meta.get("cost", {}),
            settings=meta.get("settings", {}), image=plain.get("image"),
        )


def read_npz_groups(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Every array of an ``.npz`` file, grouped by the prefix before the first ``/`` of its name (``""`` for
    names without one): ``mask/yl`` is ``groups["mask"]["yl"]``.

    The layout :meth:`Explanation.save` writes, shared by the benchmarks' stored masks so that one reader
    serves both. Read without unpickling (``allow_pickle=False``): a result file never runs code.
    """
    groups: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            prefix, sep, rest = key.partition("/")
            groups.setdefault(prefix if sep else "", {})[rest if sep else key] = data[key]
    return groups


def jsonable(value: Any) -> Any:
    """Settings as plain JSON (tuples to lists, numpy scalars to numbers, anything else to its repr)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temporary file in the same folder, then rename: readers never see half a file.

    ``write(f)`` gets the open binary file. Used for every result clearsight keeps on disk. The file gets the
    mode any other new file would (``0o666`` less the umask), not the private ``0o600`` of a temporary file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`); returns the path."""
    path = Path(path)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path


def _umask() -> int:
    """The process's umask. Read from ``/proc`` where there is one, since ``os.umask`` sets as it reads and
    another thread creating a file in between would get the stand-in mask; elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@contextmanager
def atomic_csv(path: str | os.PathLike) -> Iterator[Any]:
    """A :func:`csv.writer` whose rows reach ``path`` atomically when the block ends without an error (an
    interrupted table leaves the previous file, or none, never half a table)."""
    buffer = io.StringIO(newline="")
    yield csv.writer(buffer)
    atomic_write_text(path, buffer.getvalue())

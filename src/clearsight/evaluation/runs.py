"""What every evaluation over a set of images shares: images told apart by unique names, misclassified ones
skipped, and each finished (image, method) result kept on disk so that an interrupted evaluation resumes.

Insertion/deletion curves, rate-distortion curves and the lambda sweep all take minutes to hours over a
folder; :class:`StoredRuns` is their one loop of "load the finished result, or compute and keep it".
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoints import fingerprint, pixel_digest
from ..errors import MethodError
from ..explanation import atomic_write


class CurveStore:
    """Finished per-image curves on disk: one ``.npz`` per (image, method), written atomically.

    Results live in a subfolder named after a fingerprint of everything that changes them (curve, model and
    its weights, absence, score, players, the method's options), so a run with other settings never reuses
    them; each file also records its target and the image's pixels.
    """

    def __init__(self, folder: str | Path, settings: dict[str, Any]) -> None:
        self.folder = Path(folder) / fingerprint(settings)[:12]
        self.settings = settings

    def path(self, image: str, method: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", image)[:80]
        digest = hashlib.sha256(image.encode()).hexdigest()[:8]  # distinct names stay distinct once made safe
        return self.folder / f"{safe}-{digest}__{method}.npz"

    def load(self, image: str, method: str, target: int, pixels: str) -> dict[str, np.ndarray] | None:
        """The arrays of a finished curve (``seconds`` among them) for ``target`` on the image whose
        :func:`pixel_digest` is ``pixels``, or None.

        Names alone are not enough: a second folder may hold another photo under the same file name, and
        reusing its curve would silently mix two photos' results.
        """
        path = self.path(image, method)
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as data:
            if int(data["target"]) != int(target):  # the labels changed: that curve explains another class
                return None
            if "pixels" not in data.files or str(data["pixels"]) != pixels:  # another photo with that name
                return None
            return {k: data[k] for k in data.files if k not in ("target", "pixels")}

    def save(self, image: str, method: str, target: int, pixels: str, seconds: float,
             **arrays: np.ndarray) -> None:
        """Keep a finished curve: its ``arrays`` (e.g. ``scores``, ``predictions``) and the seconds it took."""
        self.folder.mkdir(parents=True, exist_ok=True)
        settings = self.folder / "settings.json"
        if not settings.exists():
            atomic_write(settings, lambda f: f.write(json.dumps(self.settings, indent=2, default=str).encode()))
        stored = {k: np.asarray(v) for k, v in arrays.items()}
        stored.update(seconds=np.asarray(seconds), target=np.asarray(int(target)), pixels=np.asarray(pixels))
        atomic_write(self.path(image, method), lambda f: np.savez(f, **stored))


#: method options that change where a run keeps its state or what it prints, never its result
NOT_RESULT_OPTIONS = ("checkpoint_dir", "progress")


def result_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options that decide a method's result (the key of its stored results)."""
    return {k: v for k, v in options.items() if k not in NOT_RESULT_OPTIONS}


def skip_reporter(skipped: list[str], units: Sequence[str],
                  progress: Callable[[str], None] | None) -> Callable[[str], None]:
    """The ``skipped`` callback of :meth:`StoredRuns.correctly_classified`: record the image's name and
    report each of its ``units`` (methods, initialisations, ...) done, so a progress bar still ends full."""
    def skip(name: str) -> None:
        skipped.append(name)
        for unit in units:
            if progress:
                progress(unit)

    return skip


class StoredRuns:
    """The images of an evaluation and, with a ``store`` folder, one :class:`CurveStore` per method.

    ``settings`` are what every result depends on besides the method's own ``options``, the model's weights
    and the image size; results made with other settings are never reused.
    """

    def __init__(self, clf, images: Sequence[torch.Tensor], labels: Sequence[int | None],
                 names: Sequence[str] | None, methods: Sequence[str], options: dict[str, dict[str, Any]],
                 store: str | Path | None, settings: dict[str, Any]) -> None:
        self.clf, self.images, self.labels = clf, images, labels
        self.names = list(names) if names is not None else [f"image{i}" for i in range(len(images))]
        if store is not None and len(set(self.names)) != len(self.names):
            raise MethodError("image names must be unique when finished results are stored")
        size = list(images[0].shape[-2:]) if len(images) else None
        self.stores = {m: CurveStore(store, {**settings, "methods": m, "weights": clf.weights_digest(),
                                             "options": result_options(options.get(m, {})), "size": size})
                       for m in methods} if store is not None else {}
        self._pixels: dict[str, str] = {}

    def correctly_classified(self, skipped: Callable[[str], None]) -> Iterator[tuple[str, torch.Tensor, int]]:
        """(name, image on the model's device, target) of each image whose label the model predicts (a label
        of None: the prediction is the target); ``skipped(name)`` for the others."""
        for image, label, name in zip(self.images, self.labels, self.names):
            image = image.to(self.clf.device)
            predicted = int(self.clf.logits(image[None])[0].argmax())
            if label is not None and predicted != int(label):
                skipped(name)
                continue
            yield name, image, predicted if label is None else int(label)

    def result(self, method: str, key: str, name: str, image: torch.Tensor, target: int,
               compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The stored result ``key`` of ``method`` for this image and target, or ``compute()``'s arrays plus
        the ``seconds`` it took, kept in the store before they are returned."""
        store = self.stores.get(method)
        if store is not None and name not in self._pixels:
            self._pixels[name] = pixel_digest(image)
        pixels = self._pixels.get(name, "")
        finished = store.load(name, key, target, pixels) if store is not None else None
        if finished is None:
            start = time.perf_counter()
            finished = {**compute(), "seconds": time.perf_counter() - start}
            if store is not None:
                store.save(name, key, target, pixels, **finished)
        return finished

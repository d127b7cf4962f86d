"""What an evaluation evaluates: a method name, an :class:`~clearsight.methods.Explainer` object, or saved
explanations (one :class:`~clearsight.explanation.Explanation` per image, or a folder written by
``clearsight explain``).

Each becomes an :class:`EvalMethod`: a label for the results, what a unit's computation receives (the name
with its options, the explainer, or the image's explanation) and the settings its results depend on.
Saved explanations are looked up and checked (present, made for the evaluation's target) when the units are
planned, before anything runs.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MethodError
from ..explanation import Explanation, jsonable
from ..methods.base import Explainer
from ..methods.capabilities import can, registered_class
from .driver import result_options


class SavedExplanations:
    """Explanations made earlier, one per image: a mapping image name -> :class:`Explanation`, or a folder
    written by ``clearsight explain`` (``STEM_METHOD.npz`` + ``.json``; give ``method`` when the folder
    holds several methods' results). ``label`` names them in the results (default: their method)."""

    def __init__(self, source: Mapping[str, Explanation] | str | Path, method: str | None = None,
                 label: str | None = None) -> None:
        self.mapping = dict(source) if isinstance(source, Mapping) else None
        self.folder = None if self.mapping is not None else Path(source)  # type: ignore[arg-type]
        if self.folder is not None and not self.folder.is_dir():
            raise MethodError(f"saved explanations: {self.folder} is not a folder written by clearsight explain")
        self.method = method
        self.label = label or method or self._method_in_source()

    def _method_in_source(self) -> str:
        if self.mapping is not None:
            found = {e.method for e in self.mapping.values()}
        else:
            found = {_json_method(p) for p in self.folder.glob("*.json")}  # type: ignore[union-attr]
            found.discard(None)
        if len(found) != 1:
            where = self.folder or "the mapping"
            raise MethodError(f"saved explanations in {where} are of {len(found)} methods "
                              f"({', '.join(sorted(map(str, found))) or 'none'}): name the one to evaluate")
        return str(found.pop())

    def get(self, image: str) -> Explanation:
        """The explanation of the image named ``image`` (by name, or by file stem)."""
        stem = Path(image).stem
        if self.mapping is not None:
            found = self.mapping.get(image, self.mapping.get(stem))
            if found is None:
                raise MethodError(f"no saved {self.label} explanation for image {image}")
            return found
        method = self.method or self.label
        bases = self._bases(method).get(Path(image).name) or self._bases(method).get(stem)
        if not bases:
            base = self.folder / f"{stem}_{method}"  # type: ignore[operator]  # results of clearsight <= 0.x
            bases = [base] if base.with_name(base.name + ".json").is_file() else []
        bases = [b for b in bases if b.with_name(b.name + ".npz").is_file()]
        if not bases:
            raise MethodError(f"no saved {method} explanation for image {image} in {self.folder} (expected "
                              f"{stem}_{method}_MODEL.npz and .json, as clearsight explain writes)")
        if len(bases) > 1:
            raise MethodError(f"{len(bases)} saved {method} explanations of {image} in {self.folder} "
                              f"({', '.join(sorted(b.name for b in bases))}): keep one per image in the folder")
        return Explanation.load(bases[0])

    def _bases(self, method: str) -> dict[str, list[Path]]:
        """The folder's results of ``method`` by the file name (and stem) of the photo each explains, read
        from their records (``settings.image``) since result names also carry the model and mode."""
        cache = self.__dict__.setdefault("_index", {})
        if method not in cache:
            index: dict[str, list[Path]] = {}
            for path in sorted(self.folder.glob("*.json")):  # type: ignore[union-attr]
                meta = _json_meta(path)
                image = (meta.get("settings") or {}).get("image") if isinstance(meta.get("settings"), dict) else None
                if meta.get("method") != method or not isinstance(image, str):
                    continue
                base = path.with_name(path.name[: -len(".json")])
                for key in {Path(image).name, Path(image).stem}:
                    index.setdefault(key, []).append(base)
            cache[method] = index
        return cache[method]


def _json_method(path: Path) -> str | None:
    return _json_meta(path).get("method")


def _json_meta(path: Path) -> dict:
    """The record of a saved explanation (``{}`` for any other or unreadable JSON file)."""
    import json

    if not path.is_file():  # a named pipe called x.json would block the read forever
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        return meta if str(meta.get("format", "")).startswith("clearsight.explanation") else {}
    except (OSError, ValueError, AttributeError):
        return {}


def explanation_digest(explanation: Explanation) -> str:
    """A digest of what an explanation ranks by (its saliency, order and mask), so that a changed saved
    explanation is another unit."""
    h = hashlib.sha256()
    arrays = {"saliency": explanation.saliency, "order": explanation.order,
              **{f"mask/{k}": v for k, v in explanation.mask.items()},
              **{f"arrays/{k}": v for k, v in explanation.arrays.items()}}
    for key in sorted(arrays):
        if arrays[key] is not None:
            value = np.ascontiguousarray(np.asarray(arrays[key]))
            h.update(f"{key}{value.dtype}{value.shape}".encode() + value.tobytes())
    h.update(repr(sorted(jsonable(explanation.settings).items(), key=lambda kv: kv[0])).encode())
    return h.hexdigest()[:16]


def with_attributes(explainer: Explainer, **changes: Any) -> Explainer:
    """A copy of ``explainer`` with some settings changed (the caller's object is left as it was)."""
    if changes.get("init") == "preoptimize":  # the constructor's shorthand: ones, then pre-optimisation
        changes.update(init="ones", preoptimize=True)
    out = copy.copy(explainer)
    for key, value in changes.items():
        if not hasattr(out, key):
            raise MethodError(f"{type(explainer).__name__} has no setting {key!r}")
        setattr(out, key, value)
    return out


@dataclass
class EvalMethod:
    """One method of an evaluation. Exactly one of ``name``, ``explainer`` and ``saved`` is set."""

    label: str
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    explainer: Explainer | None = None
    saved: SavedExplanations | None = None
    checkpoint_dir: str | None = None
    #: a named method's explainer as its options make it (its settings, defaults resolved, key the results)
    built: Explainer | None = None

    @property
    def cls(self) -> type | None:
        if self.name is not None:
            return registered_class(self.name)
        if self.explainer is not None:
            return type(self.explainer)
        return registered_class(self.saved.method or self.saved.label) if self.saved else None

    def can(self, capability: str) -> Any:
        cls = self.cls
        return can(cls, capability) if cls is not None else can(Explainer, capability)

    def source(self, image: str, target: int) -> Any:
        """What a unit's computation receives: the name, the explainer, or the image's saved explanation
        (checked to explain ``target``)."""
        if self.saved is None:
            return self.name if self.name is not None else self.explainer
        explanation = self.saved.get(image)
        if int(explanation.target) != int(target):
            raise MethodError(f"the saved {self.label} explanation of {image} explains class {explanation.target}, "
                              f"the evaluation class {target}: explain that class (--target) or fix the labels")
        return explanation

    def settings(self, source: Any) -> dict[str, Any]:
        """What this method's results depend on, as JSON."""
        if isinstance(source, Explanation):
            return {"saved": source.method, "digest": explanation_digest(source)}
        if isinstance(source, Explainer):
            return {"class": f"{type(source).__module__}.{type(source).__qualname__}",
                    "settings": jsonable(source.result_settings())}
        if self.built is not None:
            return {"name": self.name, "settings": jsonable(self.built.result_settings())}
        return {"name": self.name, "options": jsonable(result_options(self.options))}


def resolve_methods(methods: Sequence[Any], method_options: Mapping[str, Mapping[str, Any]] | None = None,
                    builtin: Sequence[str] = (), build: bool = True) -> list[EvalMethod]:
    """An :class:`EvalMethod` per entry of ``methods``: a name (with its ``method_options``), an
    :class:`Explainer`, a :class:`SavedExplanations` or a mapping image name -> :class:`Explanation`.

    Names in ``builtin`` (e.g. rate-distortion's random baselines) pass unchecked; other names are built
    once here (``build``), so unknown names and options fail before any work. Labels are made unique.
    """
    resolved: list[EvalMethod] = []
    for entry in methods:
        if isinstance(entry, str):
            options = dict((method_options or {}).get(entry, {}))
            checkpoint = options.get("checkpoint_dir")
            built = None
            if build and entry not in builtin:
                from ..methods import build_explainer

                built = build_explainer(entry, result_options(options))
            resolved.append(EvalMethod(entry, name=entry, options=options, built=built,
                                       checkpoint_dir=None if checkpoint is None else str(checkpoint)))
        elif isinstance(entry, Explainer):
            resolved.append(EvalMethod(entry.name, explainer=entry))
        elif isinstance(entry, SavedExplanations):
            resolved.append(EvalMethod(entry.label, saved=entry))
        elif isinstance(entry, Mapping):
            saved = SavedExplanations(entry)
            resolved.append(EvalMethod(saved.label, saved=saved))
        else:
            raise MethodError(f"cannot evaluate {entry!r}: give a method name, an Explainer, SavedExplanations or "
                              "a mapping of image names to Explanations")
    seen: dict[str, int] = {}
    for m in resolved:
        seen[m.label] = seen.get(m.label, 0) + 1
        if seen[m.label] > 1:
            m.label = f"{m.label}-{seen[m.label]}"
    return resolved

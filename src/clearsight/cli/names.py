"""File names of ``clearsight explain`` results: ``PHOTO_METHOD[-VARIANT]_MODEL`` plus a suffix.

A result's name carries everything that tells two results of one photo apart and that a user changes on
purpose between runs: the method, its mode or preset when not the default (``moxi-deletion``,
``rollout-moxi``) and the model (``deit_tiny_patch16_224``), so that explaining a photo with a second model or
in the other mode writes beside the first result instead of colliding with it. Other settings (``--lambda``,
``--steps``) are checked against the stored request instead (see :mod:`clearsight.cli.explain`).

The photo's whole file name but its last suffix is kept (``shot.1.jpg`` -> ``shot.1_...``), and suffixes are
appended, never substituted (``Path.with_suffix`` on ``shot.1_gradcam`` would give ``shot.png``). Names stay
within what every file system takes (255 bytes, less room for the ``_loss`` figure and the temporary file of an
atomic write): a longer photo name is shortened and a digest of the whole name keeps it unique.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

#: the longest file name (bytes, suffix included) a result gets; 255 is the usual limit, and an atomic write
#: adds ``.`` + 8 random characters + ``.tmp`` around the name of its temporary file
MAX_NAME_BYTES = 200
#: the longest suffix a result file gets (``_loss.png``, ``.json``, ...), kept free within MAX_NAME_BYTES
SUFFIX_ROOM = 12
#: method settings that name a variant of a method when given and not the default
VARIANT_SETTINGS = ("mode", "preset")

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def model_slug(spec: str) -> str:
    """A model spec as a file-name part: the name without its library (``timm:deit_tiny_patch16_224`` ->
    ``deit_tiny_patch16_224``, ``hf:google/vit-base-patch16-224`` -> ``google-vit-base-patch16-224``)."""
    name = spec.strip().partition(":")[2] or spec.strip()
    return _UNSAFE.sub("-", name).strip("-.") or "model"


def method_part(method: str, variants: list[str] | tuple[str, ...] = ()) -> str:
    """``method`` with its non-default variants joined by ``-`` (``moxi-deletion``)."""
    return "-".join([method, *(_UNSAFE.sub("-", str(v)).strip("-") for v in variants if str(v).strip())])


def result_stem(photo: str | Path, method: str, model: str, variants: list[str] | tuple[str, ...] = ()) -> str:
    """The name, without suffix, of ``photo``'s result by ``method`` (and variants) on the model ``model``."""
    tail = f"_{method_part(method, variants)}_{model_slug(model)}"
    head = Path(photo).stem or Path(photo).name or "image"
    room = MAX_NAME_BYTES - SUFFIX_ROOM - len(_bytes(tail))
    if len(_bytes(head)) > room:
        digest = hashlib.sha256(_bytes(head)).hexdigest()[:10]
        keep = _bytes(head)[: max(room - 11, 8)].decode("utf-8", "ignore")  # never half a character
        head = f"{keep}~{digest}"
    return head + tail


def with_suffix(stem: Path, suffix: str) -> Path:
    """``stem`` with ``suffix`` appended (``out/shot.1_gradcam_x`` + ``.png``), never substituted."""
    return stem.with_name(stem.name + suffix)


def _bytes(name: str) -> bytes:
    """A name as the file system stores it (undecodable bytes of a POSIX file name come back as they were)."""
    return name.encode("utf-8", "surrogateescape")

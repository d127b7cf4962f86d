"""Small helpers for the words clearsight writes into titles, tables and messages."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun`` in the right number: ``counted(1, "image")`` is "1 image", ``counted(10, "image")``
    "10 images" (a figure title of a one-photo run should not read "1 images")."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"

"""Errors a user can cause.

Every mistake a user can make (a bad file, an unknown model, a class out of range, a method that does not
fit the model) raises a subclass of :class:`ClearsightError` whose message says what to do. The CLI prints
that message on one line and exits with status 2, so a user never sees a traceback for their own mistake.
"""

from __future__ import annotations


class ClearsightError(Exception):
    """Base class of every error caused by user input."""


class ImageError(ClearsightError):
    """An image file is missing, unreadable, truncated, not an image, or too small."""


class ModelError(ClearsightError):
    """A model spec is unknown, its weights cannot be found or do not fit the architecture."""


class MethodError(ClearsightError):
    """A method is unknown, or does not fit the model (e.g. attention rollout on a CNN)."""


class TargetError(ClearsightError):
    """A target class is out of range or unknown."""


class InputShapeError(ClearsightError):
    """A tensor has the wrong shape, dtype or value range for the call."""

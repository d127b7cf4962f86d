"""Errors a user can cause.

Every mistake a user can make (a bad file, an unknown model, a class out of range, a method that does not
fit the model) raises a subclass of :class:`ClearsightError` whose message says what to do. The CLI prints
that message on one line and exits with status 2, so a user never sees a traceback for their own mistake.
"""

from __future__ import annotations


class ClearsightError(Exception):
    """Base class of every error caused by user input."""

    def cli_message(self) -> str:
        """The message as the command line should print it (option names as ``--flags``); see
        :class:`OptionError`. The library's own message (``str(err)``) speaks of Python arguments."""
        return str(self)


class ImageError(ClearsightError):
    """An image file is missing, unreadable, truncated, not an image, or too small."""


class ModelError(ClearsightError):
    """A model spec is unknown, its weights cannot be found or do not fit the architecture."""


class MethodError(ClearsightError):
    """A method is unknown, or does not fit the model (e.g. attention rollout on a CNN)."""


class OptionError(MethodError):
    """Options a method does not take (``clearsight.explain(..., method="gradcam", tau=0.5)``).

    ``str(err)`` names the Python arguments (``option 'tau' does not apply to method gradcam``);
    :meth:`cli_message` renders the same error with command-line flags (``--tau``), so one check serves both.
    """

    def __init__(self, method: str, options: list[str], known: bool = True, accepted: list[str] | None = None):
        self.method = method
        self.options = list(options)
        self.known = known
        self.accepted = list(accepted or [])
        super().__init__(self._render(lambda name: repr(name), "option"))

    def _render(self, show, noun: str) -> str:
        names = ", ".join(show(o) for o in self.options)
        plural = len(self.options) > 1
        label = f"{noun}{'s' if plural else ''} " if noun else ""
        if self.known:
            text = f"{label}{names} {'do' if plural else 'does'} not apply to method {self.method}"
        else:
            text = f"unknown {label or ('flags ' if plural else 'flag ')}{names} for method {self.method}"
        if self.accepted:
            text += f" (it takes {', '.join(show(a) for a in self.accepted)})"
        return text

    def cli_message(self) -> str:
        return self._render(option_flag, "")


def option_flag(name: str) -> str:
    """The command-line flag of a Python option name: ``eigen_smooth`` -> ``--eigen-smooth``."""
    return "--" + name.replace("_", "-")


class TargetError(ClearsightError):
    """A target class is out of range or unknown."""


class InputShapeError(ClearsightError):
    """A tensor has the wrong shape, dtype or value range for the call."""

"""What a method can do, as its class declares it: one place that reads the declarations, with the
defaults a class that says nothing gets.

A method class states its abilities as class attributes, next to its code, instead of every module that
treats some methods specially keeping its own list of names:

- ``gives_order``: gives its own full patch order (MoXI, MoXI(-)); curves use that order, not its saliency;
- ``modes``: the modes (``insertion``/``deletion``) it takes, each giving another order;
- ``patch_game``: takes the patch game's options ``score``, ``absence`` and ``patch_size`` (MoXI, Shapley);
- ``needs_token_model``: works on Vision Transformers only (attention rollout);
- ``rde``: an RDE mask optimiser (CartoonX, Pixel RDE): lambda sweep, initialisations and checkpoints apply.
"""

from __future__ import annotations

from typing import Any

from .base import Explainer

DEFAULTS: dict[str, Any] = {"gives_order": False, "modes": (), "patch_game": False, "needs_token_model": False,
                            "rde": False}


def method_class(method: str | Explainer | type[Explainer]) -> type[Explainer]:
    """The class of a method given by name (``clearsight.methods.METHODS``), object or class."""
    if isinstance(method, str):
        from . import explainer_class

        return explainer_class(method)[0]
    return method if isinstance(method, type) else type(method)


def registered_class(name: str) -> type[Explainer] | None:
    """The class registered under ``name``, or None for a name that is not a method (a baseline)."""
    from . import METHODS

    return method_class(name) if name in METHODS else None


def can(method: str | Explainer | type[Explainer], capability: str) -> Any:
    """The value ``method``'s class declares for ``capability`` (one of :data:`DEFAULTS`), or its default."""
    if capability not in DEFAULTS:
        raise KeyError(f"unknown capability {capability!r}; known: {', '.join(DEFAULTS)}")
    return getattr(method_class(method), capability, DEFAULTS[capability])


def methods_that(capability: str) -> list[str]:
    """The registered method names whose class declares ``capability`` (for error messages: it imports
    every method's module)."""
    from . import METHODS

    return [name for name in METHODS if can(name, capability)]

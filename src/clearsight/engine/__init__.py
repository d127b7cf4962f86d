"""Where units of work run: one unit = (experiment, image, method, settings), computed once, stored atomically
and skipped when present. Engines differ only in where :meth:`Work.compute` runs: in this process
(:class:`LocalEngine`, the default) or on a Ray cluster (:mod:`clearsight.engine.ray`, optional extra); the
store, and so the results, are the same."""

from .local import LocalEngine
from .ray import EngineError, RayEngine  # imports Ray only when a RayEngine is made
from .units import Unit, UnitStore, Work

__all__ = ["EngineError", "LocalEngine", "RayEngine", "Unit", "UnitStore", "Work"]

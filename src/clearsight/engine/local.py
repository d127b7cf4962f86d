"""The default engine: units run one after another in this process."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .units import Unit, UnitStore, Work

#: ``progress(unit, cached)`` after each unit: ``cached`` is True when it was loaded from the store
Progress = Callable[[Unit, bool], None]


def pending(units: Sequence[Unit], store: UnitStore | None) -> tuple[dict[Unit, dict[str, np.ndarray]], list[Unit]]:
    """The units already finished in ``store`` (with their arrays) and those still to compute, in order;
    a unit listed twice is computed once."""
    done: dict[Unit, dict[str, np.ndarray]] = {}
    todo: list[Unit] = []
    for unit in dict.fromkeys(units):
        found = store.load(unit) if store is not None else None
        if found is None:
            todo.append(unit)
        else:
            done[unit] = found
    return done, todo


class LocalEngine:
    """Runs :class:`Work` in-process: ``setup`` once, then each unit not yet in the store."""

    name = "local"

    def __enter__(self) -> LocalEngine:  # the same ``with engine:`` as the Ray engine; nothing to keep
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, work: Work, units: Sequence[Unit], store: UnitStore | None = None,
            progress: Progress | None = None) -> dict[Unit, dict[str, np.ndarray]]:
        """The arrays of every unit (stored ones loaded, the others computed and stored), keyed by unit."""
        done, todo = pending(units, store)
        for unit in done:
            if progress:
                progress(unit, True)
        context = work.setup() if todo else None
        for unit in todo:
            arrays = work.compute(context, unit)
            if store is not None:
                store.save(unit, arrays)
            done[unit] = arrays
            if progress:
                progress(unit, False)
        return {unit: done[unit] for unit in dict.fromkeys(units)}

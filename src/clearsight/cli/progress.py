"""The progress bar of the commands that run units of work (``explain``, ``evaluate``, ``reproduce``): one tick
per unit (a photo, for ``explain``), and an estimate of the time left that counts only the units computed.

tqdm's own estimate is made from every tick, so a resumed run that loads 90 stored units in three seconds
announced "3 s left" for the 90 that still take minutes each. Here units found in the store tick the bar
(:meth:`UnitBar.from_store`) but stay out of the rate, and the estimate appears with the first computed unit.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: tqdm's default layout without its rate and time left (both made from every tick): ours go in the postfix
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


class UnitBar:
    """A progress callback for the evaluation driver around a tqdm ``bar``.

    Called with a unit's label when that unit was computed; :meth:`from_store` when it was loaded from the
    store (or needs no work: a skipped photo's units); :meth:`expect` when an evaluation plans its units, so a
    bar over several evaluations (``reproduce``) grows its total as each one is planned.
    """

    def __init__(self, bar, clock: Callable[[], float] = time.monotonic) -> None:
        self.bar, self.clock = bar, clock
        self.computed = self.stored = 0
        self.since = clock()  # when computing began: the last plan or stored unit before the first computed one

    def __call__(self, label: str) -> None:
        self.computed += 1
        self._tick(label)

    def from_store(self, label: str) -> None:
        self.stored += 1
        if not self.computed:
            self.since = self.clock()
        self._tick(label)

    def expect(self, units: int) -> None:
        """At least ``units`` more ticks are coming (a total set up front is kept when it already covers them)."""
        self.bar.total = max(self.bar.total or 0, self.bar.n + int(units))
        if not self.computed:  # what came before (loading a model, training SET-SUM's) is not a unit's time
            self.since = self.clock()
        self.bar.refresh()

    def left(self) -> float | None:
        """Seconds until the planned units are done, at the pace of the units computed so far (None before
        the first one)."""
        remaining = (self.bar.total or 0) - self.bar.n
        if not self.computed or remaining <= 0:
            return None
        return (self.clock() - self.since) / self.computed * remaining

    def _tick(self, label: str) -> None:
        self.bar.update()
        parts = [str(label)[:40]]
        if self.stored:
            parts.append(f"{self.stored} already done")
        left = self.left()
        if left is not None:
            parts.append(f"~{duration(left)} left")
        self.bar.set_postfix_str(", ".join(parts))


def duration(seconds: float) -> str:
    """``seconds`` as a person reads a wait: "40 s", "12 min", "4 h 05 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


@contextmanager
def unit_bar(desc: str, total: int | None = None, unit: str = "unit", disable: bool = False) -> Iterator[UnitBar]:
    """A :class:`UnitBar` on stderr for the length of the block (none drawn when ``disable``: one photo needs
    no bar); ``bar.bar.write`` prints above it."""
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, bar_format=BAR_FORMAT, disable=disable) as bar:
        yield UnitBar(bar)

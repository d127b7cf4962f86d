"""A progress bar for the long loops of a method (MoXI's greedy steps, Shapley's rounds), shown when the
caller's :class:`~clearsight.methods.base.RunControl` asks for progress (the CLI does). The bar goes to stderr
and is removed when the loop ends, so the result lines a caller prints on stdout never interleave with it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(enabled: bool, total: int, desc: str, unit: str) -> Iterator[Callable[[int], object] | None]:
    """``update(n)`` of a tqdm bar of ``total`` units, or None when ``enabled`` is false (no bar, no tqdm)."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True) as bar:
        yield bar.update

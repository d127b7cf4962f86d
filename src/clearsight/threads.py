"""How many CPU threads a run uses, chosen so that a busy machine does not make it collapse.

PyTorch's OpenMP pool starts one thread per core, and those threads spin at the barrier that ends every
parallel operation. When another process holds one of the cores, our thread on it gets its time slice late at
every barrier and the others wait for it: with one CPU-bound process beside it, a 2-thread run on 2 cores was
measured 2.7x slower than quiet and slower than a 1-thread run (benchmarks/threads.py, benchmarks/RESULTS.md).
``threads="auto"`` (the CLI's default) therefore counts the cores that are idle *now* and uses that many.

A library must leave process-wide settings as it found them, so :func:`using_threads` sets torch's thread
count for the duration of a block and restores it on exit, even on error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .errors import ClearsightError

#: seconds over which /proc/stat is sampled to count idle cores (short: it is paid once per run)
SAMPLE_SECONDS = 0.1


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def _cpu_times() -> dict[str, tuple[int, int]] | None:
    """Per CPU: (idle jiffies, total jiffies) from /proc/stat; None where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            lines = [line.split() for line in f if line.startswith("cpu") and not line.startswith("cpu ")]
    except OSError:
        return None
    times = {}
    for name, *values in lines:
        numbers = [int(v) for v in values]
        idle = numbers[3] + (numbers[4] if len(numbers) > 4 else 0)  # idle + iowait
        times[name] = (idle, sum(numbers))
    return times


def idle_cores(sample_seconds: float = SAMPLE_SECONDS) -> float:
    """How many of this process's cores are idle right now (a fraction per core, summed).

    Linux: measured from /proc/stat over ``sample_seconds``. Elsewhere: usable cores minus the 1-minute load
    average (a slower signal, but the best the OS offers).
    """
    try:
        allowed = {f"cpu{i}" for i in os.sched_getaffinity(0)}
    except (AttributeError, OSError):
        allowed = None
    before = _cpu_times()
    if before is None:
        try:
            return max(0.0, usable_cores() - os.getloadavg()[0])
        except (AttributeError, OSError):
            return float(usable_cores())
    time.sleep(sample_seconds)
    after = _cpu_times() or {}
    idle = 0.0
    for name, (idle0, total0) in before.items():
        if (allowed is not None and name not in allowed) or name not in after:
            continue
        idle1, total1 = after[name]
        idle += (idle1 - idle0) / (total1 - total0) if total1 > total0 else 1.0
    return idle


def choose_threads(threads: int | str | None = "auto") -> int | None:
    """The thread count for a run: an int as given, ``"auto"`` from the idle cores (at least 1), None to leave
    torch's setting alone."""
    if threads is None:
        return None
    if isinstance(threads, str):
        if threads.strip().lower() != "auto":
            try:
                threads = int(threads)
            except ValueError:
                raise ClearsightError(f"threads is a positive number or 'auto'; got {threads!r}") from None
        else:
            # a core counts as free when it is at least 60% idle: a busy neighbour leaves ~0-10%
            return max(1, min(usable_cores(), int(idle_cores() + 0.4)))
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ClearsightError(f"threads is a positive number or 'auto'; got {threads!r}")
    return threads


@contextmanager
def using_threads(threads: int | str | None = "auto") -> Iterator[int]:
    """Run the block with :func:`choose_threads`'s count of torch threads, then restore the previous count."""
    previous = torch.get_num_threads()
    chosen = choose_threads(threads)
    if chosen is None or chosen == previous:
        yield previous
        return
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(previous)

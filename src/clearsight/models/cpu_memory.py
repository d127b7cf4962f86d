"""Keep freed memory inside the process on CPU, so that repeated batches stop page-faulting.

By default glibc hands large freed blocks straight back to the kernel: blocks above a (dynamic) mmap
threshold are unmapped on ``free``, and the top of the heap is trimmed once more than 128 KiB of it is
free. A loop that allocates and frees the same activations every step (a CartoonX run is 400 to 2000
forward+backward steps; MoXI and the curves run thousands of batches) then pays for fresh zeroed pages on
every step. Raising both thresholds keeps those pages mapped and reused.

Measured on 2 AVX2 cores (``benchmarks/rde.py --allocator``): a default CartoonX step with
EfficientNet-Lite0 at 256 px fell from 405 to 257 ms (x1.58; peak memory 1430 -> 1506 MiB), the paper preset's
step from ~3.3 to ~2.75 s; DeiT-Tiny (fewer, larger matmul buffers) is unchanged. The price is memory the
process keeps after a peak, at most the trim threshold (256 MiB) above what it uses.

This is process-wide, so the library never does it by itself: loading or wrapping a model leaves the
allocator alone. It is opt-in: the ``clearsight`` command calls :func:`keep_freed_memory` when it starts,
and so can a script of yours. It is done once, on Linux/glibc only, and never when the user has set
glibc's own ``MALLOC_*`` variables or ``CLEARSIGHT_MALLOC_TUNING=0``.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 256 << 20

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when they are raised.

    Opt-in (process-wide): call it at the start of a program that runs many CPU forward/backward passes."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    user_choice = any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                                                "MALLOC_TOP_PAD_"))
    if user_choice or os.environ.get("CLEARSIGHT_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _applied = (libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                    and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    except (OSError, AttributeError):  # not glibc (musl, a preloaded allocator without mallopt)
        _applied = False
    return _applied

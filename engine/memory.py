"""Keep freed memory for reuse instead of handing it back to the kernel (glibc malloc tuning).

Why: every search allocates and frees the same ~10 MB of picture buffers
(decoded pixels, OpenCV's ORB pyramid). glibc serves blocks above its
*dynamic* mmap threshold with ``mmap`` and unmaps them on ``free``, and trims
the heap top when enough is free, so each search faulted its pages in again:
~3 300 minor page faults and ~8 ms of kernel time per 1280x800 search on the
development VM (``ru_minflt``), i.e. ~12 % of the query's feature extraction.
Fixed thresholds (``mallopt``: blocks up to 32 MB from the heap, trim only
above 64 MB free) keep those pages: 0 faults, extraction 52 -> 46-48 ms CPU,
same peak memory (the process keeps what it needed at its peak anyway).

Called once by :meth:`engine.core.Quaid.open` (the CLI, the service, the
benchmarks). No-op outside glibc, and when the operator set glibc's own
malloc variables (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
``GLIBC_TUNABLES``), which then win.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from functools import lru_cache

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 64 << 20
OPERATOR_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; True when they were set."""
    if any(name in os.environ for name in OPERATOR_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not done:
        log.warning("could not tune malloc (mallopt refused): searches fault their buffers in each time")
    return done


def return_freed_memory() -> bool:
    """Give the memory freed by a large decode back to the kernel (glibc ``malloc_trim``).

    Why: decoding a 59-megapixel picture takes hundreds of megabytes in blocks below
    the fixed mmap threshold, spread over the request threads' malloc arenas; with
    the trim threshold above, glibc keeps them once freed, so a few large pictures at
    once left the service at their peak for good. ``malloc_trim(0)`` walks every arena
    and returns whole free pages, so it is called after large decodes only
    (:mod:`engine.budget`): the small buffers each search reuses stay. True when it ran.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@lru_cache(maxsize=1)
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim

"""A decoded-pixel budget shared by every decode in the process, so memory has a stated peak.

Why: the pixel limit (``Settings.max_pixels``) bounds one picture, not many at
once. A 57 KB PNG can declare 59 megapixels; decoding it takes ~0.5 GB for a
moment, and eight such uploads at once took the service past 1.5 GB. So each
decode first reserves its pixel count here (the size it will really be decoded
at: a JPEG decoded at a reduced scale reserves the reduced size) and gives it
back when done:

* a picture larger than the whole budget can never be decoded: 413
  (:class:`engine.errors.PictureTooLarge`);
* a decode that finds the budget in use waits, at most ``wait`` seconds, then
  gets :class:`engine.errors.ServiceBusy` (503 with ``Retry-After``: the server is
  busy, the client did nothing wrong, so not 429);
* after a large decode the freed memory is handed back to the kernel
  (:func:`engine.memory.return_freed_memory`).

Peak decoding memory is then about ``capacity`` times the bytes a pixel costs
while decoding (``benchmarks/bench_memory.py`` measures it).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from engine.errors import PictureTooLarge, ServiceBusy
from engine.memory import return_freed_memory

DEFAULT_BUDGET_MEGAPIXELS = 60  # one picture at the default pixel limit, or ~30 screenshots, at once
DEFAULT_WAIT = 5.0  # seconds a decode waits for budget (MISP gives an enrichment 10 s in all)
TRIM_AFTER_PIXELS = 8_000_000  # decodes this large hand their freed memory back to the kernel


class PixelBudget:
    """At most ``capacity`` decoded pixels in flight; :meth:`reserve` around each decode."""

    def __init__(self, capacity: int, wait: float = DEFAULT_WAIT) -> None:
        if capacity < 1:
            raise ValueError("the decoding budget needs at least one pixel")
        self.capacity = capacity
        self.wait = wait
        self._used = 0
        self._changed = threading.Condition()

    @property
    def used(self) -> int:
        """Pixels reserved right now."""
        return self._used

    @contextmanager
    def reserve(self, pixels: int) -> Iterator[None]:
        """Hold ``pixels`` of the budget for the ``with`` block (waiting for them if needed)."""
        if pixels > self.capacity:
            raise PictureTooLarge(f"picture of {pixels} pixels is larger than the decoding budget of "
                                  f"{self.capacity} pixels")
        self._take(pixels)
        try:
            yield
        finally:
            with self._changed:
                self._used -= pixels
                self._changed.notify_all()
            if pixels >= TRIM_AFTER_PIXELS:
                return_freed_memory()

    def _take(self, pixels: int) -> None:
        deadline = time.monotonic() + self.wait
        with self._changed:
            while self._used + pixels > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServiceBusy("busy decoding other large pictures: retry shortly",
                                      retry_after=max(1, math.ceil(self.wait)))
                self._changed.wait(left)
            self._used += pixels


def budget_from_megapixels(megapixels: float, wait: float) -> PixelBudget:
    """The budget of a setting in megapixels."""
    return PixelBudget(int(megapixels * 1_000_000), wait)

"""Multi-index hashing: every stored code within ``radius`` bits of a query, without scanning them all.

Why: the flat scan costs ~10 ms per query per million stored codes (``benchmarks/bench_index.py``),
so at tens of millions of pictures the prefilter alone takes most of a core per query.
Multi-index hashing (Norouzi, Punjani, Fleet, "Fast search in Hamming space with multi-index
hashing", CVPR 2012; Meta's HMA indexes PDQ this way) cuts each code into ``m`` disjoint
substrings. Two codes within ``m * (flips + 1) - 1`` bits of each other agree on at least one
substring up to ``flips`` bits (pigeonhole), so looking up each substring of the query with every
variant of at most ``flips`` flipped bits finds every such code, exactly. Codes further away are
often found too; they are not guaranteed.

Layout: each 64-bit word of a code gives three disjoint substrings of ``width`` bits, about
``log2`` of the number of stored codes (16 to 21 bits), so a bucket holds a few codes; the
bits left over (64 - 3 * width) are only compared, which keeps the pigeonhole guarantee.
Per substring: the row numbers sorted by substring value (int32, 4 bytes a row) and a table of
where each value's rows start (2^width + 1 int32: 8.4 MB at 21 bits). The codes themselves are
not copied: the caller passes its code array to :meth:`MultiIndexHash.pairs`.

The structure is built once over a fixed number of rows and never updated: the caller scans
rows added later flatly, and rebuilds when they grow, in the background (:class:`BackgroundHash`,
used by :class:`engine.index.CodeTable`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from itertools import combinations

import numpy as np

log = logging.getLogger(__name__)

PARTS = 3  # substrings per 64-bit word
MIN_WIDTH, MAX_WIDTH = 16, 21  # bits per substring (3 * 21 <= 64)
FLIPS = 2  # bits flipped per substring probe: 64-bit codes found within 8 bits, 256-bit within 35


def radius(nbytes: int, flips: int = FLIPS) -> int:
    """Bits within which every stored code is found (pigeonhole over the substrings)."""
    return substrings(nbytes) * (flips + 1) - 1


def substrings(nbytes: int) -> int:
    return nbytes // 8 * PARTS


def width_for(rows: int) -> int:
    """Substring bits for ``rows`` codes: about log2(rows), so that a bucket holds a few rows."""
    return min(MAX_WIDTH, max(MIN_WIDTH, rows.bit_length()))


def supports(nbytes: int) -> bool:
    """Codes must be whole 64-bit words."""
    return nbytes >= 8 and nbytes % 8 == 0


class MultiIndexHash:
    """Substring tables over rows ``[0, rows)`` of a code array (``(n, nbytes)`` uint8)."""

    def __init__(self, codes: np.ndarray, flips: int = FLIPS) -> None:
        if not supports(codes.shape[1]):
            raise ValueError("multi-index hashing needs codes of whole 64-bit words")
        self.rows = len(codes)
        self.flips = flips
        self.width = width_for(self.rows)
        words = np.ascontiguousarray(codes).view("<u8")
        count = substrings(codes.shape[1])
        self._order = np.empty(count * self.rows, dtype=np.int32)  # per substring: rows sorted by value
        self._starts: list[np.ndarray] = []  # per substring: value -> first position in its part of _order
        for n, values in enumerate(_substring_values(words, self.width)):
            self._order[n * self.rows: (n + 1) * self.rows] = np.argsort(values)
            starts = np.zeros((1 << self.width) + 1, dtype=np.int32)
            np.cumsum(np.bincount(values, minlength=1 << self.width), out=starts[1:])
            self._starts.append(starts)
        self._masks = _flip_masks(self.width, flips)

    @property
    def nbytes_used(self) -> int:
        return self._order.nbytes + sum(a.nbytes for a in self._starts)

    def pairs(self, queries: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows, query numbers) of every stored row sharing a substring within ``flips`` bits
        with a query; None when there are more than ``limit`` (a flat scan is cheaper then).

        A row may appear several times (for several substrings or queries).
        """
        words = np.ascontiguousarray(queries).view("<u8")
        starts, ends, sources = [], [], []
        query_numbers = np.arange(len(queries))
        masks = self._masks
        for n, values in enumerate(_substring_values(words, self.width)):
            probes = (values[:, None].astype(np.int64) ^ masks[None, :]).ravel()
            table = self._starts[n]
            starts.append(table[probes].astype(np.int64) + n * self.rows)
            ends.append(table[probes + 1].astype(np.int64) + n * self.rows)
            sources.append(np.repeat(query_numbers, len(masks)))
        begin, end, source = np.concatenate(starts), np.concatenate(ends), np.concatenate(sources)
        lengths = end - begin
        total = int(lengths.sum())
        if total > limit:
            return None
        hit = lengths > 0
        begin, lengths, source = begin[hit], lengths[hit], source[hit]
        offsets = np.repeat(begin - (np.cumsum(lengths) - lengths), lengths)
        positions = np.arange(total, dtype=np.int64) + offsets
        return self._order[positions], np.repeat(source, lengths)


def _substring_values(words: np.ndarray, width: int) -> Iterator[np.ndarray]:
    """Each substring's value for every row, word by word (uint64 words shifted, masked), one at
    a time: a build holds one substring's temporaries, not all of them."""
    mask = np.uint64((1 << width) - 1)
    for word in range(words.shape[1]):
        for part in range(PARTS):
            yield ((words[:, word] >> np.uint64(part * width)) & mask).astype(np.uint32)


def _flip_masks(width: int, flips: int) -> np.ndarray:
    """Every ``width``-bit mask with at most ``flips`` bits set (0 first)."""
    masks = [0]
    for count in range(1, flips + 1):
        masks += [sum(1 << bit for bit in bits) for bits in combinations(range(width), count)]
    return np.array(masks, dtype=np.int64)


class BackgroundHash:
    """The multi-index hash of a table whose rows keep growing, rebuilt in a background thread.

    Why: a build takes seconds per million codes (12 substrings of a PDQ code, each sorted), and
    a table is only ever changed under its owner's lock, which every search takes too. Building
    in the foreground would stall every search for that long. Meanwhile searches use the previous
    hash (plus a flat scan of the rows added since), or the flat scan.

    The owner must not change rows below :attr:`covered` in place (a build may be reading them):
    it tombstones such a row and appends the new code instead.
    """

    def __init__(self) -> None:
        self.current: MultiIndexHash | None = None
        self.covered = 0  # rows the current hash or the build under way covers
        self._thread: threading.Thread | None = None
        self._built: tuple[int, MultiIndexHash | None] | None = None
        self._generation = 0  # bumped by discard: a build started before is thrown away

    @property
    def building(self) -> bool:
        return self._thread is not None

    def start(self, codes: np.ndarray) -> None:
        """Build over ``codes`` (rows [0, len) of the owner's array, left unchanged meanwhile),
        unless a build is under way."""
        if self._thread is not None:
            return
        generation, self.covered = self._generation, max(self.covered, len(codes))

        def build() -> None:
            try:
                self._built = (generation, MultiIndexHash(codes))
            except MemoryError:
                log.warning("multi-index hash of %d codes: out of memory, searches stay flat", len(codes))
                self._built = (generation, None)

        self._thread = threading.Thread(target=build, name="quaid-multihash", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Until the build under way (if any) is finished and adopted."""
        if self._thread is not None:
            self._thread.join()
        self.adopt()

    def adopt(self) -> None:
        """Take a finished build (called under the owner's lock, before each search)."""
        if self._thread is None or self._thread.is_alive():
            return
        self._thread = None
        generation, built = self._built or (-1, None)
        self._built = None
        if generation == self._generation and built is not None:
            self.current = built

    def discard(self) -> None:
        """Forget the hash and any build under way (rows were renumbered, or the table shrank)."""
        self._generation += 1
        self.current, self.covered = None, 0

"""The candidate index: a bounded shortlist of stored pictures close to a query, in milliseconds.

Why: search must not run every algorithm against every stored picture (issue 3).
Each picture contributes compact binary codes (packed bits whose Hamming distance is
meaningful: PDQ's 256 bits, 64/256-bit dHash/pHash, ...; see
``Matcher.prefilter_codes``). For a query the index computes the Hamming distance
to every stored code of the same name — a brute-force scan, which at these sizes
beats approximate structures for exact recall: Meta's HMA and faiss both scan
packed codes with hardware popcount — and keeps the ``k`` nearest per code name;
the union, ranked by the smallest bit-fraction distance, is the shortlist that the
full algorithms then score.

Backends (measured by ``benchmarks/bench_index.py``): faiss ``IndexBinaryFlat``
(Johnson, Douze, Jégou, "Billion-scale similarity search with GPUs", 2017; its
binary flat scan uses 64-bit popcounts over the codes and a heap for the top k) is
used when importable; otherwise numpy (``np.bitwise_count`` over uint64 words, in
cache-sized chunks). On one core, 1M 256-bit codes: faiss ~3 ms, numpy ~40 ms.

Deletions leave a tombstone (the row's id becomes None) and searches ask for
``k + tombstones`` neighbours; the table is compacted once tombstones pass 1/8 of it.
The index holds no Redis connection: :mod:`engine.store.mirror` feeds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

try:
    import faiss

    # One thread: a query scans for a few milliseconds, where waking OpenMP workers on a shared
    # machine cost more than they save (measured: 40+ ms stalls under load); the service gets
    # its parallelism from concurrent requests instead.
    faiss.omp_set_num_threads(1)
except ImportError:  # pragma: no cover - faiss-cpu is a dependency, numpy is the fallback
    faiss = None

_CHUNK_ROWS = 65_536  # rows per numpy step: keeps the xor/popcount temporaries in cache
_MIN_COMPACT = 1024  # tombstones below this never trigger a compaction


@dataclass(frozen=True)
class Candidate:
    """A stored picture the prefilter found close to the query."""

    id: str
    distance: float  # smallest Hamming distance over code names, as a fraction of the bits
    code: str  # the code name that gave it


def default_backend() -> str:
    return "faiss" if faiss is not None else "numpy"


class CodeTable:
    """All stored codes of one name (equal lengths), one row per picture."""

    def __init__(self, nbytes: int, backend: str = "auto") -> None:
        if nbytes < 1:
            raise ValueError("codes must have at least one byte")
        self.nbytes = nbytes
        self.backend = default_backend() if backend == "auto" else backend
        if self.backend == "faiss" and faiss is None:
            raise ValueError("faiss backend requested but faiss is not installed")
        self._codes = np.zeros((1024, nbytes), dtype=np.uint8)
        self._ids: list[str | None] = []
        self._rows: dict[str, int] = {}
        self._dead = 0
        self._faiss = None  # built lazily; holds rows [0, ntotal) of _codes

    def __len__(self) -> int:
        return len(self._rows)

    def upsert(self, picture_id: str, code: bytes) -> None:
        if len(code) != self.nbytes:
            raise ValueError(f"code of {len(code)} bytes in a table of {self.nbytes}-byte codes")
        row = self._rows.get(picture_id)
        if row is not None:
            if self._codes[row].tobytes() == code:
                return
            self.remove(picture_id)
        row = len(self._ids)
        if row == len(self._codes):
            self._codes = np.concatenate([self._codes, np.zeros_like(self._codes)])
        self._codes[row] = np.frombuffer(code, dtype=np.uint8)
        self._ids.append(picture_id)
        self._rows[picture_id] = row

    def extend(self, picture_ids: Sequence[str], codes: np.ndarray) -> None:
        """Append many new pictures at once (index rebuild); ids must not be stored yet."""
        if codes.shape != (len(picture_ids), self.nbytes):
            raise ValueError(f"expected a ({len(picture_ids)}, {self.nbytes}) array, got {codes.shape}")
        start = len(self._ids)
        if start + len(picture_ids) > len(self._codes):
            grown = np.zeros((max(2 * len(self._codes), start + len(picture_ids)), self.nbytes), np.uint8)
            grown[:start] = self._codes[:start]
            self._codes = grown
        self._codes[start: start + len(picture_ids)] = codes
        self._ids.extend(picture_ids)
        self._rows.update((ident, start + n) for n, ident in enumerate(picture_ids))

    def remove(self, picture_id: str) -> None:
        row = self._rows.pop(picture_id, None)
        if row is None:
            return
        self._ids[row] = None
        self._dead += 1
        if self._dead >= _MIN_COMPACT and self._dead * 8 >= len(self._ids):
            self.compact()

    def compact(self) -> None:
        """Drop tombstoned rows (O(rows); amortised over at least n/8 deletions)."""
        alive = [row for row, ident in enumerate(self._ids) if ident is not None]
        codes = self._codes[alive]
        self._codes = np.zeros((max(1024, 2 * len(alive)), self.nbytes), dtype=np.uint8)
        self._codes[: len(alive)] = codes
        self._ids = [self._ids[row] for row in alive]
        self._rows = {ident: row for row, ident in enumerate(self._ids)}
        self._dead = 0
        self._faiss = None

    def search(self, queries: Sequence[bytes], k: int) -> dict[str, int]:
        """The ``k`` nearest live pictures to any of ``queries``: id -> smallest distance in bits."""
        total = len(self._ids)
        if not total or not queries or k < 1:
            return {}
        query = np.frombuffer(b"".join(queries), dtype=np.uint8).reshape(len(queries), self.nbytes)
        want = min(total, k + self._dead)
        if self.backend == "faiss":
            distances, rows = self._faiss_search(query, want)
        else:
            distances, rows = self._numpy_search(query, want)
        best: dict[str, int] = {}
        for dist_row, row_row in zip(distances, rows, strict=True):
            for dist, row in zip(dist_row.tolist(), row_row.tolist(), strict=True):
                ident = self._ids[row] if row >= 0 else None
                if ident is not None and dist < best.get(ident, 1 << 30):
                    best[ident] = dist
        return dict(sorted(best.items(), key=lambda item: item[1])[:k])

    def _faiss_search(self, query: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
        total = len(self._ids)
        if self._faiss is None:
            self._faiss = faiss.IndexBinaryFlat(self.nbytes * 8)
        if self._faiss.ntotal < total:
            self._faiss.add(self._codes[self._faiss.ntotal: total])
        return self._faiss.search(query, want)

    def _numpy_search(self, query: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
        total = len(self._ids)
        word = np.uint64 if self.nbytes % 8 == 0 else np.uint8
        stored = self._codes[:total].view(word)
        queries = query.view(word)
        all_d = np.empty((len(queries), total), dtype=np.int32)
        for start in range(0, total, _CHUNK_ROWS):
            block = stored[start: start + _CHUNK_ROWS]
            for n, q in enumerate(queries):
                all_d[n, start: start + len(block)] = np.bitwise_count(block ^ q).sum(axis=1)
        rows = np.argpartition(all_d, want - 1, axis=1)[:, :want] if want < total else \
            np.broadcast_to(np.arange(total), (len(queries), total))
        return np.take_along_axis(all_d, rows, axis=1), rows


class CandidateIndex:
    """Every stored picture's prefilter codes, one :class:`CodeTable` per code name."""

    def __init__(self, backend: str = "auto") -> None:
        self.backend = default_backend() if backend == "auto" else backend
        self._tables: dict[str, CodeTable] = {}
        self._codes_of: dict[str, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._codes_of)

    def __contains__(self, picture_id: object) -> bool:
        return picture_id in self._codes_of

    def ids(self) -> list[str]:
        return list(self._codes_of)

    def upsert(self, picture_id: str, codes: Mapping[str, bytes]) -> None:
        """Add or replace a picture's codes (a picture without codes is still known)."""
        for name in set(self._codes_of.get(picture_id, ())) - set(codes):
            self._tables[name].remove(picture_id)
        for name, code in codes.items():
            table = self._tables.get(name)
            if table is None:
                table = self._tables[name] = CodeTable(len(code), self.backend)
            table.upsert(picture_id, code)
        self._codes_of[picture_id] = tuple(codes)

    def extend(self, entries: Sequence[tuple[str, Mapping[str, bytes]]]) -> None:
        """Add many pictures at once (index rebuild): one array copy per code name, not per picture."""
        fresh: dict[str, tuple[str, ...]] = {}
        by_name: dict[str, tuple[list[str], list[bytes]]] = {}
        for picture_id, codes in entries:
            if picture_id in self._codes_of or picture_id in fresh:
                self.upsert(picture_id, codes)
                continue
            fresh[picture_id] = tuple(codes)
            for name, code in codes.items():
                by_name.setdefault(name, ([], []))
                by_name[name][0].append(picture_id)
                by_name[name][1].append(code)
        for name, (_, codes) in by_name.items():  # check everything before changing anything
            expected = self._tables[name].nbytes if name in self._tables else len(codes[0])
            if {len(c) for c in codes} != {expected}:
                raise ValueError(f"codes {name!r} of several lengths; the table holds {expected} bytes")
        for name, (ids, codes) in by_name.items():
            if name not in self._tables:
                self._tables[name] = CodeTable(len(codes[0]), self.backend)
            table = self._tables[name]
            table.extend(ids, np.frombuffer(b"".join(codes), np.uint8).reshape(len(ids), table.nbytes))
        self._codes_of.update(fresh)

    def remove(self, picture_id: str) -> None:
        for name in self._codes_of.pop(picture_id, ()):
            self._tables[name].remove(picture_id)

    def shortlist(self, query_codes: Mapping[str, Sequence[bytes]], k: int) -> list[Candidate]:
        """At most ``k`` candidates, nearest first (union over code names).

        With no usable code (no prefilter algorithm enabled, or no stored code of that
        name yet) the index cannot narrow anything down and returns every picture: a
        linear scan, as python-threatexchange's fallback for signal types without index.
        """
        best: dict[str, Candidate] = {}
        usable = [name for name in query_codes if name in self._tables and query_codes[name]]
        if not usable:
            return [Candidate(i, 1.0, "") for i in self._codes_of]
        for name in usable:
            table = self._tables[name]
            bits = table.nbytes * 8
            for ident, dist in table.search(query_codes[name], k).items():
                fraction = dist / bits
                if ident not in best or fraction < best[ident].distance:
                    best[ident] = Candidate(ident, fraction, name)
        return sorted(best.values(), key=lambda c: (c.distance, c.id))[:k]

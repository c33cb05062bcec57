"""The candidate index: a bounded shortlist of stored pictures close to a query, in milliseconds.

Why: search must not run every algorithm against every stored picture.
Each picture contributes compact binary codes (packed bits whose Hamming distance is
meaningful: PDQ's 256 bits, 64/256-bit dHash/pHash, ...; see
``Matcher.prefilter_codes``). For a query the index computes the Hamming distance
to every stored code of the same name — a brute-force scan, which at these sizes
beats approximate structures for exact recall: Meta's HMA and faiss both scan
packed codes with hardware popcount — and keeps the ``k`` nearest per code name;
the union, ranked by the smallest bit-fraction distance, is the shortlist that the
full algorithms then score.

Past ``multihash_from`` codes in a table (``settings.index_multihash_from``, 500 000 by default)
the scan gives way to multi-index hashing (:mod:`engine.multihash`): every code within its
radius (8 bits of a 64-bit code, 35 of PDQ's 256) is still found exactly, at a fraction of the
cost (10M codes: 18x faster for PDQ, 76x for a 64-bit code; ``benchmarks/bench_multihash.py``);
codes further away, which the scan would still rank, only sometimes.

Backends of the scan (measured by ``benchmarks/bench_index.py``): faiss ``IndexBinaryFlat``
(Johnson, Douze, Jégou, "Billion-scale similarity search with GPUs", 2017; its
binary flat scan uses 64-bit popcounts over the codes and a heap for the top k) is
used when importable; otherwise numpy (``np.bitwise_count`` over uint64 words, in
cache-sized chunks). On one core, 1M 256-bit codes: faiss ~3 ms, numpy ~40 ms.

Memory (``benchmarks/bench_capacity.py``): a picture id is interned once, as its 32-byte
digest, in an :class:`engine.keytable.IdTable` shared with the cluster map; each code table
holds the codes in one uint8 array plus two int32 arrays (row -> id slot, id slot -> row),
and faiss scans that array in place (``faiss.knn_hamming``, the kernel behind
``IndexBinaryFlat.search``) instead of keeping a second copy. No Python object per picture.

Deletions leave a tombstone (the row's slot becomes -1) and searches ask for
``k + tombstones`` neighbours; the table is compacted once tombstones pass 1/8 of it.
Replacing a picture's code overwrites its row in place.
The index holds no Redis connection: :mod:`engine.store.mirror` feeds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.keytable import INDEX, IdTable, grown
from engine.multihash import BackgroundHash, supports

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
# Live codes from which a table is multi-index hashed: there the flat scan of the four region
# tables alone (~22 ms each for a query's 36 probes) costs about as much as the rest of a search,
# while below it the hash saves little (300k codes: 1.7x for a 64-bit table) and its radius loses
# a few far copies the scan still ranks (bench_multihash, candidate_recall --multihash).
MULTIHASH_FROM = 500_000
_MIN_TAIL = 65_536  # rows added since the multi-index hash was built, scanned flat, before a rebuild


Tables = Mapping[str, tuple[np.ndarray, np.ndarray]]  # code name -> (picture rows, codes): a snapshot's


@dataclass(frozen=True)
class Candidate:
    """A stored picture the prefilter found close to the query."""

    id: str
    distance: float  # smallest Hamming distance over code names, as a fraction of the bits
    code: str  # the code name that gave it


def default_backend() -> str:
    return "faiss" if faiss is not None else "numpy"


class CodeTable:
    """All stored codes of one name (equal lengths), one row per picture.

    Rows are addressed by id slots of an :class:`IdTable`: shared with the other tables of a
    :class:`CandidateIndex` (which then owns the slots), or private to a standalone table.
    """

    def __init__(self, nbytes: int, backend: str = "auto", ids: IdTable | None = None,
                 multihash_from: int | None = MULTIHASH_FROM) -> None:
        """``multihash_from``: live codes from which searches go through a multi-index hash
        (:mod:`engine.multihash`) instead of a flat scan; None: always a flat scan."""
        if nbytes < 1:
            raise ValueError("codes must have at least one byte")
        self.nbytes = nbytes
        self.backend = default_backend() if backend == "auto" else backend
        if self.backend == "faiss" and faiss is None:
            raise ValueError("faiss backend requested but faiss is not installed")
        self._own_ids = ids is None
        self._ids = IdTable() if ids is None else ids
        self._codes = np.zeros((0, nbytes), dtype=np.uint8)
        self._slot_of_row = np.zeros(0, dtype=np.int32)  # -1: tombstone
        self._row_of_slot = np.zeros(0, dtype=np.int32)  # -1: no code in this table
        self._rows = 0  # rows in use, tombstones included
        self._dead = 0
        self.multihash_from = multihash_from if supports(nbytes) else None
        self._hashes = BackgroundHash()  # its hash covers rows [0, rows); later rows are scanned flat

    def __len__(self) -> int:
        return self._rows - self._dead

    # --- by id (the public form) --------------------------------------------------------

    def upsert(self, picture_id: str, code: bytes) -> None:
        self._check(code)
        self.put(self._ids.acquire(picture_id, INDEX)[0], code)

    def remove(self, picture_id: str) -> None:
        slot = self._ids.find(picture_id, INDEX)
        if slot >= 0 and self.holds(slot):
            self.drop(slot)
            if self._own_ids:
                self._ids.release(slot, INDEX)

    def search(self, queries: Sequence[bytes], k: int) -> dict[str, int]:
        """The ``k`` nearest live pictures to any of ``queries``: id -> smallest distance in bits."""
        slots, distances = self.nearest(queries, k)
        return dict(zip(self._ids.names(slots.tolist()), distances.tolist(), strict=True))

    # --- by slot (what CandidateIndex uses) ---------------------------------------------

    def holds(self, slot: int) -> bool:
        return slot < len(self._row_of_slot) and self._row_of_slot[slot] >= 0

    def put(self, slot: int, code: bytes) -> None:
        """Store or replace the code of ``slot`` (a replaced code is overwritten in place, unless
        the multi-index hash covers its row: then the row is tombstoned and the code appended)."""
        self._check(code)
        if self.holds(slot):
            row = self._row_of_slot[slot]
            if row >= self._hashes.covered:
                self._codes[row] = np.frombuffer(code, dtype=np.uint8)
                return
            self.drop(slot)
        self.put_many(np.array([slot], dtype=np.int32), np.frombuffer(code, np.uint8).reshape(1, -1))

    def put_many(self, slots: np.ndarray, codes: np.ndarray) -> None:
        """Append the codes of ``slots``, none of which this table holds yet (index rebuild)."""
        if codes.shape != (len(slots), self.nbytes):
            raise ValueError(f"expected a ({len(slots)}, {self.nbytes}) array, got {codes.shape}")
        start, end = self._rows, self._rows + len(slots)
        self._codes = grown(self._codes, end)
        self._slot_of_row = grown(self._slot_of_row, end, -1)
        slot_rows = max(self._ids.capacity, int(slots.max(initial=-1)) + 1)
        self._row_of_slot = grown(self._row_of_slot, slot_rows, -1)
        self._codes[start:end] = codes
        self._slot_of_row[start:end] = slots
        self._row_of_slot[slots] = np.arange(start, end, dtype=np.int32)
        self._rows = end

    def drop(self, slot: int) -> None:
        """Tombstone the row of ``slot`` (which must be held)."""
        row = self._row_of_slot[slot]
        self._row_of_slot[slot] = -1
        self._slot_of_row[row] = -1
        self._dead += 1
        if self._dead >= _MIN_COMPACT and self._dead * 8 >= self._rows:
            self.compact()

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        """(slots, codes) of every live row, a copy (what an index snapshot saves)."""
        alive = np.flatnonzero(self._slot_of_row[: self._rows] >= 0)
        return self._slot_of_row[alive], self._codes[alive]

    def compact(self) -> None:
        """Drop tombstoned rows (O(rows); amortised over at least n/8 deletions)."""
        alive = np.flatnonzero(self._slot_of_row[: self._rows] >= 0)
        self._codes = self._codes[alive]
        self._slot_of_row = self._slot_of_row[alive]
        self._row_of_slot[self._slot_of_row] = np.arange(len(alive), dtype=np.int32)
        self._rows, self._dead = len(alive), 0
        self._hashes.discard()  # rows renumbered: rebuilt by the next search (or prepare)

    @property
    def kind(self) -> str:
        """How searches find candidates now: ``multihash`` or ``flat``."""
        return "multihash" if self._hashes.current is not None else "flat"

    def prepare(self, wait: bool = False) -> None:
        """Build, rebuild or drop the multi-index hash as the table's size asks (every search calls
        this). Builds run in the background unless ``wait``; searches meanwhile scan flat, or use
        the previous hash and scan the rows added since flat.

        Rebuilt when the rows added since the last build pass 1/32 of it (at least 65 536), so
        that flat part stays small. Dropped when the live codes fall under half the threshold.
        """
        hashes = self._hashes
        hashes.adopt()
        if self.multihash_from is None or len(self) < self.multihash_from // 2:
            if hashes.current is not None or hashes.building:
                hashes.discard()
            return
        current = hashes.current
        if current is None and len(self) < self.multihash_from:
            return
        if current is None or self._rows - current.rows > max(_MIN_TAIL, current.rows // 32):
            hashes.start(self._codes[: self._rows])
        if wait:
            hashes.wait()

    def nearest(self, queries: Sequence[bytes], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(slots, distances in bits) of the ``k`` nearest live pictures to any query, nearest first."""
        total = self._rows
        if not total or not queries or k < 1:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
        query = np.frombuffer(b"".join(queries), dtype=np.uint8).reshape(len(queries), self.nbytes)
        self.prepare()
        found = self._hashed(query, k) if self._hashes.current is not None else None
        rows, distances = found if found is not None else self._scan(query, 0, k)
        if len(rows) > 8 * k:  # many candidates (a hash lookup, many probes): rank the nearest few first
            cut = np.partition(distances, 4 * k)[4 * k]
            near = distances <= cut
            slots, nearest = self._best(rows[near], distances[near], k)
            if len(slots) == k:  # any other row is further than all of these
                return slots, nearest
        return self._best(rows, distances, k)

    def _best(self, rows: np.ndarray, distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest live slots of ``rows`` (repeats allowed: each slot's smallest distance)."""
        slots = np.where(rows >= 0, self._slot_of_row[np.maximum(rows, 0)], -1)
        live = slots >= 0
        slots, distances = slots[live], distances[live]
        order = np.lexsort((distances, slots))  # by slot, nearest first: keep each slot's first
        slots, distances = slots[order], distances[order]
        first = np.ones(len(slots), dtype=bool)
        first[1:] = slots[1:] != slots[:-1]
        slots, distances = slots[first], distances[first]
        best = np.argsort(distances, kind="stable")[:k]
        return slots[best], distances[best]

    def _scan(self, query: np.ndarray, start: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, distances) of the ``k`` nearest live rows from ``start`` on (flat scan), with repeats."""
        stored = self._codes[start: self._rows]
        want = min(len(stored), k + self._dead)
        if not want:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        if self.backend == "faiss":
            distances, rows = faiss.knn_hamming(query, stored, want)
        else:
            distances, rows = _numpy_knn(query, stored, want)
        rows = rows.ravel()
        return np.where(rows >= 0, rows + start, -1), distances.ravel()

    def _hashed(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows, distances) through the multi-index hash, plus a flat scan of the rows added
        since it was built; None when the hash would yield more than a quarter of the table
        (codes bunched on a few substring values: a flat scan is cheaper)."""
        hashed = self._hashes.current
        built = hashed.rows
        pairs = hashed.pairs(query, limit=max(built // 4, 4096))
        if pairs is None:
            return None
        rows, sources = pairs
        words = self._codes.view("<u8")
        distances = np.bitwise_count(words[rows] ^ query.view("<u8")[sources]).sum(axis=1, dtype=np.int32)
        tail_rows, tail_distances = self._scan(query, built, k)
        return np.concatenate([rows, tail_rows]), np.concatenate([distances, tail_distances])

    def _check(self, code: bytes) -> None:
        if len(code) != self.nbytes:
            raise ValueError(f"code of {len(code)} bytes in a table of {self.nbytes}-byte codes")


def _numpy_knn(queries: np.ndarray, stored: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact Hamming k-NN with numpy: (distances, rows), each of shape (queries, want), unordered."""
    total = len(stored)
    word = np.uint64 if stored.shape[1] % 8 == 0 else np.uint8
    stored, queries = stored.view(word), queries.view(word)
    all_d = np.empty((len(queries), total), dtype=np.int32)
    for start in range(0, total, _CHUNK_ROWS):
        block = stored[start: start + _CHUNK_ROWS]
        for n, q in enumerate(queries):
            all_d[n, start: start + len(block)] = np.bitwise_count(block ^ q).sum(axis=1)
    rows = np.argpartition(all_d, want - 1, axis=1)[:, :want] if want < total else \
        np.broadcast_to(np.arange(total), (len(queries), total))
    return np.take_along_axis(all_d, rows, axis=1), rows


class CandidateIndex:
    """Every stored picture's prefilter codes, one :class:`CodeTable` per code name.

    ``ids`` may be shared with a :class:`engine.clusters.ClusterMap` (the mirror does) so
    that each picture id is stored once per process.
    """

    def __init__(self, backend: str = "auto", ids: IdTable | None = None,
                 multihash_from: int | None = MULTIHASH_FROM) -> None:
        self.backend = default_backend() if backend == "auto" else backend
        self.multihash_from = multihash_from  # see CodeTable
        self._ids = IdTable() if ids is None else ids
        self._tables: dict[str, CodeTable] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, picture_id: object) -> bool:
        return isinstance(picture_id, str) and self._ids.find(picture_id, INDEX) >= 0

    def ids(self) -> list[str]:
        return self._ids.names(self._ids.held_by(INDEX).tolist())

    def upsert(self, picture_id: str, codes: Mapping[str, bytes]) -> None:
        """Add or replace a picture's codes (a picture without codes is still known)."""
        for name, code in codes.items():  # check everything before changing anything
            if name in self._tables:
                self._tables[name]._check(code)
            elif not code:
                raise ValueError(f"empty code {name!r}")
        slot, new = self._ids.acquire(picture_id, INDEX)
        self._count += new
        for name, table in self._tables.items():
            if name not in codes and table.holds(slot):
                table.drop(slot)
        for name, code in codes.items():
            self._table(name, len(code)).put(slot, code)

    def extend(self, entries: Sequence[tuple[str, Mapping[str, bytes]]]) -> None:
        """Add many pictures at once (index rebuild): one array copy per code name, not per picture.

        Entries naming a picture already stored (or named twice) are applied as upserts after the rest.
        """
        by_name: dict[str, list[bytes]] = {}
        for _, codes in entries:  # check everything before changing anything
            for name, code in codes.items():
                by_name.setdefault(name, []).append(code)
        for name, codes in by_name.items():
            expected = self._tables[name].nbytes if name in self._tables else len(codes[0])
            if expected < 1 or {len(c) for c in codes} != {expected}:
                raise ValueError(f"codes {name!r} of several lengths; the table holds {expected} bytes")
        first: dict[str, Mapping[str, bytes]] = {}
        again: list[tuple[str, Mapping[str, bytes]]] = []
        for picture_id, codes in entries:
            if picture_id in first:
                again.append((picture_id, codes))
            else:
                first[picture_id] = codes
        slots, fresh = self._ids.acquire_many(list(first), INDEX)
        self._count += int(fresh.sum())
        rows: dict[str, tuple[list[int], list[bytes]]] = {}
        held = []
        for (picture_id, codes), slot, new in zip(first.items(), slots.tolist(), fresh.tolist(), strict=True):
            if not new:
                held.append((picture_id, codes))
                continue
            for name, code in codes.items():
                rows.setdefault(name, ([], []))
                rows[name][0].append(slot)
                rows[name][1].append(code)
        for name, (table_slots, codes) in rows.items():
            table = self._table(name, len(codes[0]))
            table.put_many(np.array(table_slots, dtype=np.int32),
                           np.frombuffer(b"".join(codes), np.uint8).reshape(len(codes), -1))
        for picture_id, codes in held + again:
            self.upsert(picture_id, codes)

    def export(self) -> tuple[np.ndarray, np.ndarray, dict[int, str], Tables]:
        """Every picture as arrays (copies), for an index snapshot: (slots, ascending; their id
        digests; row -> id of the foreign ids; code name -> (rows of the pictures, codes))."""
        slots = self._ids.held_by(INDEX)
        digests, foreign = self._ids.digests(slots)
        row_of = np.full(self._ids.capacity, -1, dtype=np.int32)
        row_of[slots] = np.arange(len(slots), dtype=np.int32)
        tables = {}
        for name, table in self._tables.items():
            held, codes = table.live()
            tables[name] = (row_of[held], codes)
        return slots, digests, foreign, tables

    def load(self, digests: np.ndarray, foreign: Mapping[int, str], tables: Tables) -> np.ndarray:
        """Fill an empty index from an export: pictures as ``(n, 32)`` id digests (see
        :meth:`IdTable.digests`), each table as (rows of ``digests``, codes); returns their slots."""
        if self._count:
            raise ValueError("only an empty index can be loaded")
        slots, _ = self._ids.acquire_digests(digests, INDEX, foreign)
        self._count = len(slots)
        for name, (rows, codes) in tables.items():
            if len(rows) != len(codes) or len(rows) and not 0 <= rows.min() <= rows.max() < len(slots):
                raise ValueError(f"table {name}: rows outside the pictures")
            self._table(name, codes.shape[1]).put_many(slots[rows].astype(np.int32), codes)
        return slots

    def prepare(self, wait: bool = False) -> None:
        """Start building every table's multi-index hash whose size asks for one (after a rebuild);
        ``wait``: until they are built."""
        for table in self._tables.values():
            table.prepare(wait)

    def kinds(self) -> dict[str, str]:
        """Code name -> how its table is searched (``flat`` or ``multihash``)."""
        return {name: table.kind for name, table in sorted(self._tables.items())}

    def remove(self, picture_id: str) -> None:
        slot = self._ids.find(picture_id, INDEX)
        if slot < 0:
            return
        for table in self._tables.values():
            if table.holds(slot):
                table.drop(slot)
        self._ids.release(slot, INDEX)
        self._count -= 1

    def shortlist(self, query_codes: Mapping[str, Sequence[bytes]], k: int) -> list[Candidate]:
        """At most ``k`` candidates, best first: each code name's nearest, merged by rank.

        Rank fusion: a stored picture's place is its best rank in any code name's list
        (ties: the smaller bit fraction, then the id), so every table contributes its
        nearest pictures. Merging by raw distance instead lets the table whose codes put
        a site's pages closest (64-bit region codes of a shared header) fill the whole
        shortlist with siblings and push out the picture another table ranked first
        (measured: benchmarks/candidate_recall.py). A stored picture's ``distance`` is its
        smallest bit fraction over the names.

        With no usable code (no prefilter algorithm enabled, or no stored code of that
        name yet) the index cannot narrow anything down and returns every picture: a
        linear scan, as python-threatexchange's fallback for signal types without index.
        """
        usable = [name for name in query_codes if name in self._tables and query_codes[name]]
        if not usable:
            return [Candidate(i, 1.0, "") for i in self.ids()]
        place: dict[int, tuple[int, float, str]] = {}  # slot -> (best rank, its fraction, code name)
        nearest: dict[int, float] = {}
        for name in usable:
            table = self._tables[name]
            bits = table.nbytes * 8
            slots, distances = table.nearest(query_codes[name], k)
            for rank, (slot, dist) in enumerate(zip(slots.tolist(), distances.tolist(), strict=True)):
                fraction = dist / bits
                if slot not in place or (rank, fraction) < place[slot][:2]:
                    place[slot] = (rank, fraction, name)
                nearest[slot] = min(fraction, nearest.get(slot, 1.0))
        found = [(rank, fraction, self._ids.name(slot), slot, name)
                 for slot, (rank, fraction, name) in place.items()]
        found.sort(key=lambda item: item[:3])
        return [Candidate(ident, nearest[slot], name) for _, _, ident, slot, name in found[:k]]

    def _table(self, name: str, nbytes: int) -> CodeTable:
        table = self._tables.get(name)
        if table is None:
            table = self._tables[name] = CodeTable(nbytes, self.backend, self._ids, self.multihash_from)
        return table

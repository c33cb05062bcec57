"""The in-memory mirror of the store: candidate index and cluster map, rebuilt and kept in sync.

At start :meth:`Mirror.rebuild` notes the change stream's position, then SCANs every
record (codes, cluster, time added) into the index and cluster map, then replays
the events written meanwhile. :meth:`Mirror.sync` — called before every search and
add — reads the events after the position and re-reads the state of each picture
they name (see :mod:`engine.store.changes` for why events carry no state). So a
process sees every addition or deletion committed by any other process before its
next search starts: the sync costs one stream read when nothing changed.

Pictures whose features come from another algorithm version (``versions``, see
:mod:`engine.store.versions`) are kept out of the index and listed in :attr:`Mirror.stale`:
a search never compares them, and the engine refuses a store that holds any.

The index and the cluster map share one :class:`engine.keytable.IdTable`, so each picture id
is held once per process (:func:`new_views`).

Thread safety: one lock guards the index and cluster map; the service calls
``sync``/``shortlist`` from several threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from engine.clusters import ClusterMap
from engine.index import MULTIHASH_FROM, Candidate, CandidateIndex
from engine.keytable import IdTable, release_free_memory
from engine.store.changes import PENDING_GRACE, START, ChangeLog
from engine.store.records import IndexEntry, RecordStore
from engine.store.versions import VersionCheck

log = logging.getLogger(__name__)


def new_views(backend: str = "auto", multihash_from: int | None = MULTIHASH_FROM
              ) -> tuple[CandidateIndex, ClusterMap]:
    """An empty candidate index and cluster map sharing one id table."""
    ids = IdTable()
    return CandidateIndex(backend, ids=ids, multihash_from=multihash_from), ClusterMap(ids=ids)


class Mirror:
    """Candidate index + cluster map of every stored picture, fed from Redis."""

    def __init__(self, records: RecordStore, changes: ChangeLog, backend: str = "auto",
                 versions: VersionCheck | None = None, multihash_from: int | None = MULTIHASH_FROM) -> None:
        self.records = records
        self.changes = changes
        self.versions = versions  # None: every stored picture is comparable (no version check)
        self.stale: dict[str, tuple[str, ...]] = {}  # id -> algorithms whose stored version differs
        self._multihash_from = multihash_from  # see engine.index.CodeTable
        self.index, self.clusters = new_views(backend, multihash_from)
        self.position = START
        self.lock = threading.RLock()
        self._backend = backend
        self._pending: dict[str, float] = {}  # add events whose record is not written yet

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Load every stored picture (those of other feature versions into :attr:`stale` only);
        returns how many were read. ``progress(n)`` is called every 10 000."""
        started = time.monotonic()
        with self.lock:
            self.index, self.clusters = new_views(self._backend, self._multihash_from)
            self._pending.clear()
            self.stale.clear()
            self.position = self.changes.last_id()
            count = 0
            for batch in self.records.scan_batches():
                scanned = len(batch)
                count += scanned
                batch = [e for e in batch if not self._held_out(e)]
                self.index.extend([(e.id, e.codes) for e in batch])
                self.clusters.extend([(e.id, e.cluster, e.added) for e in batch])
                if progress and count // 10_000 > (count - scanned) // 10_000:
                    progress(count)
            self.sync()
            self.index.prepare()
            release_free_memory()  # the batches' and regrown arrays' holes in the C heap
        log.info("index rebuilt: %d pictures in %.2f s", len(self.index), time.monotonic() - started)
        return count

    def sync(self) -> int:
        """Apply the changes other processes made since the last sync; returns events read."""
        with self.lock:
            if self.changes.missed(self.position):
                log.warning("change stream trimmed past our position: rebuilding the index")
                self.rebuild()
                return 0
            events = self.changes.read(self.position)
            if not events and not self._pending:
                return 0
            last_op = {}
            for event in events:
                last_op[event.id] = event.op
            for ident in self._pending:
                last_op.setdefault(ident, "add")
            entries = self.records.index_entries(last_op)
            now = time.monotonic()
            for ident, op in last_op.items():
                if ident in entries:
                    self._pending.pop(ident, None)
                    self.apply(entries[ident])
                elif op == "add" and now - self._pending.setdefault(ident, now) < PENDING_GRACE:
                    continue  # its writer has announced it but not written it yet
                else:
                    self._pending.pop(ident, None)
                    self.forget(ident)
            if events:
                self.position = events[-1].stream_id
            return len(events)

    def apply(self, entry: IndexEntry) -> None:
        with self.lock:
            known_stale = entry.id in self.stale
            if self._held_out(entry):
                self.index.remove(entry.id)
                self.clusters.remove(entry.id)
                if not known_stale:
                    log.warning("picture %s was stored by another version of %s: left out of searches "
                                "until `quaid reindex`", entry.id, ", ".join(self.stale[entry.id]))
                return
            self.index.upsert(entry.id, entry.codes)
            self.clusters.set(entry.id, entry.cluster, entry.added)

    def forget(self, picture_id: str) -> None:
        with self.lock:
            self.stale.pop(picture_id, None)
            self.index.remove(picture_id)
            self.clusters.remove(picture_id)

    def _held_out(self, entry: IndexEntry) -> bool:
        """True (and noted in :attr:`stale`) when the entry's features are of another version."""
        names = self.versions.stale_names(entry.versions) if self.versions is not None else ()
        if names:
            self.stale[entry.id] = names
        else:
            self.stale.pop(entry.id, None)
        return bool(names)

    def shortlist(self, query_codes: Mapping[str, Sequence[bytes]], k: int) -> list[Candidate]:
        with self.lock:
            return self.index.shortlist(query_codes, k)

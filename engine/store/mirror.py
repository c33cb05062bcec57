"""The in-memory mirror of the store: candidate index and cluster map, rebuilt and kept in sync.

At start :meth:`Mirror.start` loads the index snapshot written by the last process
(:mod:`engine.store.snapshot`) and replays the events written since; when there is none, or
it does not check out, :meth:`Mirror.rebuild` notes the change stream's position, then SCANs
every record (codes, cluster, time added) into the index and cluster map, then replays
the events written meanwhile, and a snapshot is written for the next start.
:meth:`Mirror.sync` — called before every search and add — reads the events after the
position and re-reads the state of each picture they name (see :mod:`engine.store.changes`
for why events carry no state). So a process sees every addition or deletion committed by any other
process before its next search starts: the sync costs one stream read when nothing changed.

Pictures whose features come from another algorithm version (``versions``, see
:mod:`engine.store.versions`) are kept out of the index and listed in :attr:`Mirror.stale`:
a search never compares them, and the engine refuses a store that holds any.

The index and the cluster map share one :class:`engine.keytable.IdTable`, so each picture id
is held once per process (:func:`new_views`).

Thread safety: one lock guards the index and cluster map; the service calls
``sync``/``shortlist`` from several threads.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from engine.clusters import ClusterMap
from engine.errors import StoreUnavailable
from engine.index import MULTIHASH_FROM, Candidate, CandidateIndex
from engine.keytable import IdTable, release_free_memory
from engine.store import snapshot
from engine.store.changes import PENDING_GRACE, START, ChangeLog
from engine.store.records import IndexEntry, RecordStore
from engine.store.versions import VersionCheck

log = logging.getLogger(__name__)
REPLAY_COST = 100  # a change replayed at start costs about as much as writing this many pictures' entries


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
        self._store_id: str | None = None  # the store's identity (engine.store.snapshot), read at start
        self.saved_position: str | None = None  # position of the last snapshot written or loaded
        self._unsaved = 0  # changes applied since that snapshot (a rebuild counts every picture)

    def start(self, path: Path | None, progress: Callable[[int], None] | None = None) -> str:
        """Load the index from the snapshot at ``path`` and apply the changes since, or rebuild it
        from the store (then write a snapshot) when there is none or it does not check out.
        Returns ``"snapshot"`` or ``"rebuilt"``."""
        if path is not None:
            started = time.monotonic()
            try:
                self._store_id = snapshot.store_identity(self.records.redis)
                self._restore(snapshot.load(path))
                loaded = time.monotonic()
                applied = self.sync()
                self.index.prepare()
                release_free_memory()
                log.info("index loaded from its snapshot: %d pictures in %.2f s, %d changes since applied "
                         "in %.2f s", len(self.index), loaded - started, applied, time.monotonic() - loaded)
                return "snapshot"
            except snapshot.Refused as exc:
                log.info("index snapshot not used (%s): rebuilding the index from the store", exc)
        self.rebuild(progress)
        if path is not None:
            self.save_snapshot(path)
        return "rebuilt"

    def snapshot_due(self) -> bool:
        """Whether writing a snapshot now costs less than replaying the changes applied since the
        last one at the next start: a replayed change (a Redis read and an index update, ≈ 0.7 ms)
        costs about as much as writing :data:`REPLAY_COST` pictures' entries (≈ 7 µs each), both
        measured by ``benchmarks/bench_restart.py``."""
        with self.lock:
            return self.position != self.saved_position and self._unsaved * REPLAY_COST >= len(self.index)

    def save_snapshot(self, path: Path) -> bool:
        """Write the index to ``path`` (a copy is taken under the lock, the file written outside);
        False (and a warning) when it cannot be written: the next start then rebuilds."""
        started = time.monotonic()
        try:
            if self._store_id is None:
                self._store_id = snapshot.store_identity(self.records.redis)
            with self.lock:
                taken, unsaved = self._capture(), self._unsaved
            size = snapshot.save(path, taken)
        except (OSError, ValueError, StoreUnavailable) as exc:
            log.warning("index snapshot not written to %s: %s", path, exc)
            return False
        self.saved_position = taken.header["position"]
        with self.lock:
            self._unsaved = max(0, self._unsaved - unsaved)
        log.info("index snapshot written: %d pictures, %.1f MB in %.2f s", taken.header["pictures"],
                 size / 1e6, time.monotonic() - started)
        return True

    def _capture(self) -> snapshot.Snapshot:
        slots, digests, foreign, tables = self.index.export()
        arrays = {"ids": digests, **{f"clusters.{k}": v for k, v in self.clusters.export(slots).items()}}
        for name, (rows, codes) in tables.items():
            arrays[f"table.{name}.rows"], arrays[f"table.{name}.codes"] = rows, codes
        header = {"store": self._store_id, "versions": self._versions_text(), "position": self.position,
                  "pictures": len(slots), "foreign": {str(row): ident for row, ident in foreign.items()},
                  "stale": {ident: list(names) for ident, names in self.stale.items()},
                  "pending": list(self._pending), "tables": sorted(tables), "written": time.time()}
        return snapshot.Snapshot(header, arrays)

    def _restore(self, saved: snapshot.Snapshot) -> None:
        """Make the snapshot the index, after checking it belongs here (:class:`snapshot.Refused` else)."""
        header, arrays = saved.header, saved.arrays
        if header.get("store") != self._store_id:
            raise snapshot.Refused("written for another store (or this one before it was emptied)")
        if header.get("versions") != self._versions_text():
            raise snapshot.Refused("written with other feature versions or algorithms")
        position = str(header.get("position", ""))
        try:
            gap = self.changes.gap_after(position)
        except ValueError:
            raise snapshot.Refused(f"malformed change-stream position {position[:40]!r}") from None
        if gap:
            raise snapshot.Refused(gap)
        try:
            stale = {str(ident): tuple(names) for ident, names in header["stale"].items()}
            pending = [str(ident) for ident in header["pending"]]
            index, clusters = new_views(self._backend, self._multihash_from)
            foreign = {int(row): str(ident) for row, ident in header["foreign"].items()}
            tables = {name: (arrays[f"table.{name}.rows"], arrays[f"table.{name}.codes"])
                      for name in header["tables"]}
            slots = index.load(arrays["ids"], foreign, tables)
            clusters.load(slots, **{k: arrays[f"clusters.{k}"] for k in
                                    ("numbers", "cluster", "added", "representative")})
        except (KeyError, ValueError, IndexError, TypeError, AttributeError) as exc:
            raise snapshot.Refused(f"inconsistent: {exc!r}") from None
        with self.lock:
            self.index, self.clusters = index, clusters
            self.stale = stale
            now = time.monotonic()
            self._pending = {ident: now for ident in pending}
            self.position = self.saved_position = position
            self._unsaved = 0

    def _versions_text(self) -> str:
        """The feature versions the index's content depends on (which pictures are stale)."""
        if self.versions is None:
            return "unchecked"
        versions = {"current": self.versions.current, "renamed": self.versions.renamed}
        return json.dumps(versions, sort_keys=True)

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
            self._unsaved = count  # as if every picture had changed: no snapshot holds them yet
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
            self._unsaved += len(events)
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

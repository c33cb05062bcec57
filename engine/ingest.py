"""Bulk ingest: add many pictures, their decoding and features computed by worker processes.

Where the time goes when adding a screenshot: decoding it and computing its features and query
codes (:func:`engine.prepared.prepare`) takes about half; the search that chooses its cluster and
the write take the rest. The first half does not depend on the store, so ``workers`` processes do
it in parallel, ahead of the one that owns the store, which adds the pictures *in the order
given* — the search of each sees every picture before it, so the records (features, codes,
clusters) are those a one-by-one ``quaid add`` gives.

Round trips to Redis per batch of :data:`BATCH` pictures: one pipeline asks which are stored
already (their ids are the SHA-256 of their bytes, so a re-run after an interruption skips them
without decoding them), and one durable commit writes the batch's disk-tier part (ORB features,
thumbnails). Per picture remain the search's fetch of its shortlist and the write of its record,
which must precede the next picture's search.

A file that fails (not a picture, too large, a worker that died on it) fails alone: its result
carries the reason. Workers hand their results back as framed bytes (:mod:`engine.prepare_pool`),
never pickled.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

from engine.core import AddResult, Quaid
from engine.errors import PictureTooLarge, QuaidError
from engine.prepare_pool import Preparer
from engine.prepared import Prepared
from engine.store import keys

__all__ = ["Item", "Outcome", "Preparer", "default_workers", "ingest"]

BATCH = 32  # pictures checked for duplicates, and written to the disk tier, together
AHEAD = 4  # batches prepared ahead of the one being added, per worker


@dataclass(frozen=True)
class Item:
    """One input: a name, and its bytes or the reason they could not be read."""

    name: str
    data: bytes | None
    error: str = ""


@dataclass(frozen=True)
class Outcome:
    """What became of one input: an :class:`AddResult`, or the reason it failed."""

    name: str
    result: AddResult | None = None
    error: str = ""

    def to_json(self) -> dict:
        if self.result is not None:
            return self.result.to_json()
        return {"id": None, "name": self.name, "status": "error", "cluster": None, "error": self.error}


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ingest(quaid: Quaid, items: Iterable[Item], tags: Iterable[str] = (), metadata: Mapping | None = None,
           workers: int | None = None, preparer: Preparer | None = None) -> Iterator[Outcome]:
    """Add ``items`` to ``quaid``'s store; yields one :class:`Outcome` per item, in order.

    ``preparer``: a running :class:`Preparer` to share (the service keeps one); else one with
    ``workers`` processes is started for this call.
    """
    if preparer is None:
        workers = default_workers() if workers is None else max(1, workers)
        with Preparer(quaid.settings, workers) as own:
            yield from ingest(quaid, items, tags, metadata, preparer=own)
        return
    batches = (_batch(quaid, chunk) for chunk in _chunks(items, BATCH))
    pending: deque[list[tuple[Item, str, object]]] = deque()
    for batch in batches:
        pending.append([(item, ident, preparer.submit(item.data) if work else known)
                        for item, ident, work, known in batch])
        if len(pending) > AHEAD * preparer.workers:
            yield from _add_batch(quaid, pending.popleft(), tuple(tags), metadata)
    while pending:
        yield from _add_batch(quaid, pending.popleft(), tuple(tags), metadata)


def _batch(quaid: Quaid, chunk: list[Item]) -> list[tuple[Item, str, bool, object]]:
    """(item, id, needs preparing, what is known already) for a chunk, with one Redis pipeline for
    the pictures already stored. Known: an :class:`AddResult` (stored), an error text, or None."""
    limit = quaid.settings.max_upload_bytes
    ids = [hashlib.sha256(item.data).hexdigest() if item.data is not None else "" for item in chunk]
    pipe = quaid.redis.pipeline(transaction=False)
    for ident in ids:
        if ident:
            pipe.hmget(keys.picture(ident), "name", "cluster")
    stored = iter(pipe.execute() if any(ids) else [])
    out = []
    for item, ident in zip(chunk, ids, strict=True):
        if not ident:
            out.append((item, ident, False, item.error or "unreadable"))
            continue
        name, cluster = next(stored)
        if cluster is not None:
            out.append((item, ident, False, AddResult(ident, name.decode(), "duplicate", int(cluster))))
        elif len(item.data) > limit:
            out.append((item, ident, False, str(PictureTooLarge(f"{len(item.data)} bytes, above the limit "
                                                                f"of {limit}"))))
        else:
            out.append((item, ident, True, None))
    return out


def _add_batch(quaid: Quaid, batch: list[tuple[Item, str, object]], tags: tuple[str, ...],
               metadata: Mapping | None) -> Iterator[Outcome]:
    """Wait for a batch's preparations, write its disk-tier part in one commit, add one by one."""
    ready: dict[int, Prepared | str] = {}
    bulk: dict[str, bytes] = {}
    for n, (_, _, state) in enumerate(batch):
        if isinstance(state, Future):
            ready[n] = prepared = state.result()
            if isinstance(prepared, str):
                continue
            features = {name: values[0] for name, values in prepared.query_features.items()}
            bulk.update(quaid.records.split(prepared.id, features, prepared.image)[2])
    quaid.records.tier_put(bulk)  # durable before any record refers to it
    added: dict[str, AddResult] = {}  # the same bytes twice in one batch: the second is a duplicate
    for n, (item, ident, state) in enumerate(batch):
        outcome = ready.get(n, state)
        if isinstance(outcome, Prepared):
            if ident in added:
                first = added[ident]
                yield Outcome(item.name, AddResult(ident, first.name, "duplicate", first.cluster))
                continue
            try:
                result = quaid.add_prepared(outcome, item.name, tags, metadata, tier_written=True)
            except QuaidError as exc:
                yield Outcome(item.name, error=str(exc))
                continue
            added[ident] = result
            yield Outcome(item.name, result)
        elif isinstance(outcome, AddResult):
            yield Outcome(item.name, outcome)
        else:
            yield Outcome(item.name, error=str(outcome))


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

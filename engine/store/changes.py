"""The change stream: how processes sharing one Redis keep their in-memory index in sync.

Every add, delete or update appends ``{op, id}`` to the Redis stream ``quaid:changes``.
A process rebuilds its index from the records at start (noting the stream position
first), then reads the stream from that position before each search. Events only
say *which* picture changed; the reader re-reads that picture's current state, so
replaying an event twice, or out of order with a rebuild, is harmless.

Ordering with the record write (no cross-slot transaction exists on a Redis Cluster):
an ``add`` event is appended *before* the record is written, so a writer that dies
between the two leaves an event whose record never appears; readers retry such an
event for :data:`PENDING_GRACE` seconds and then drop it. A ``delete`` event is
appended *after* the record is removed; a reader that misses one (writer died in
between) still never returns the picture, because search re-reads candidates'
features and drops ids that no longer exist.

The stream is capped (``MAXLEN ~``); a reader that falls behind the cap rebuilds. Each event
names the one before it (``prev``, appended by one script), so a reader whose own last event was
trimmed, but nothing after it, sees that the oldest kept event follows it directly and need not
rebuild.

On a Redis Cluster the stream is one key, so it lives on one master: every add,
delete and update of every process appends there, and every process reads it before
each search. That master is a hot spot: ``benchmarks/bench_capacity.py`` measures the
command time of an XADD at ~2 µs and of an empty XREAD at ~1 µs, so with Redis's
per-command network overhead one core of that master carries on the order of 10^5
changes and polls per second — far above the add rates of the capacity model, but
every search everywhere depends on it: while that master fails over (about two node
timeouts) adds and searches answer 503 everywhere. Sharding the stream by id prefix
would spread the load but multiply every reader's polls; at the rates of the capacity
model one stream is enough.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.cluster import RedisCluster

from engine.store import keys
from engine.store.cluster import ReplicaWait

STREAM_MAXLEN = 1_000_000  # events kept (approximately); a reader further behind rebuilds
PENDING_GRACE = 10.0  # seconds an add event waits for its record before it is dropped
START = "0-0"

# KEYS[1] stream; ARGV: maxlen, op, id. Appends {op, id, prev}: prev is the newest event before it.
_PUBLISH = """
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = newest[1] and newest[1][1] or '0-0'
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'op', ARGV[2], 'id', ARGV[3], 'prev', prev)
"""


@dataclass(frozen=True)
class Change:
    stream_id: str
    op: str  # "add" | "delete" | "update"
    id: str


class ChangeLog:
    """Append to and read from the ``quaid:changes`` stream."""

    def __init__(self, client: redis.Redis | RedisCluster, key: str = keys.CHANGES,
                 replica_wait: ReplicaWait | None = None) -> None:
        self.redis = client
        self.key = key
        self.replica_wait = replica_wait  # when set, an event counts as published once replicated
        self._publish = client.register_script(_PUBLISH)

    def publish(self, op: str, picture_id: str) -> str:
        args = [STREAM_MAXLEN, op, picture_id]
        if self.replica_wait is None:
            stream_id = self._publish(keys=[self.key], args=args)
        else:
            (stream_id,) = self.replica_wait.run(self.key, lambda pipe: self._publish(
                keys=[self.key], args=args, client=pipe))
        return _text(stream_id)

    def last_id(self) -> str:
        """Id of the newest event, or ``0-0`` for an empty stream."""
        newest = self.redis.xrevrange(self.key, count=1)
        return _text(newest[0][0]) if newest else START

    def first_id(self) -> str | None:
        oldest = self._oldest()
        return _text(oldest[0]) if oldest else None

    def _oldest(self) -> tuple[bytes | str, dict] | None:
        oldest = self.redis.xrange(self.key, count=1)
        return oldest[0] if oldest else None

    def read(self, after: str, count: int = 10_000) -> list[Change]:
        """Events strictly after ``after`` (not blocking), oldest first."""
        changes: list[Change] = []
        while True:
            reply = self.redis.xread({self.key: after}, count=count)
            if not reply:
                return changes
            events = reply[0][1]
            for stream_id, values in events:
                fields = {_text(k): _text(v) for k, v in values.items()}
                changes.append(Change(_text(stream_id), fields.get("op", ""), fields.get("id", "")))
            after = changes[-1].stream_id
            if len(events) < count:
                return changes

    def missed(self, after: str) -> bool:
        """True when events after ``after`` were trimmed away (the reader must rebuild); not when
        only ``after`` itself was, and the oldest kept event names it as the one before."""
        oldest = self._oldest()
        if oldest is None or after == START or _order(_text(oldest[0])) <= _order(after):
            return False
        prev = {_text(k): _text(v) for k, v in oldest[1].items()}.get("prev")
        return prev != after and not self._contains(after)

    def gap_after(self, position: str) -> str | None:
        """Why the events after ``position`` can no longer all be read, or None when they can.

        Two ways to lose them: trimmed (:meth:`missed`; for a position of ``0-0``, any event
        ever removed: the stream's ``entries-added`` beyond its length on Redis 7, a stream at
        its cap on older servers, since trimming only starts there), or a stream older than the
        position (the store was restored from a backup taken before it).
        """
        newest = self.last_id()
        if _order(position) > _order(newest):
            return f"the change stream ends at {newest}, before {position} (store restored or stream reset)"
        if position != START:
            lost = self.missed(position)
        else:
            try:
                info = self.redis.xinfo_stream(self.key)
            except redis.ResponseError:  # no stream yet
                info = {}
            length, added = int(info.get("length", 0)), info.get("entries-added")
            lost = int(added) > length if added is not None else length >= STREAM_MAXLEN
        return f"events after {position} were trimmed from the change stream" if lost else None

    def _contains(self, stream_id: str) -> bool:
        return bool(self.redis.xrange(self.key, min=stream_id, max=stream_id, count=1))


def _order(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

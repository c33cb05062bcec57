"""Retroactive matches: the stream of "a new picture matches earlier ones" events that connectors follow.

Why: when a picture is added, the search that chooses its cluster has already found the
earlier pictures it matches. A reference added today that matches fourteen screenshots
of last month's events is news for those events; MISP and AIL learn it by reading this
stream from the last position they handled (``GET /api/v1/events?after=<position>``).

One Redis stream, ``quaid:events:matches``, capped at about MAXLEN events (``XADD MAXLEN
~``); each event has the id Redis gives it (``<ms>-<seq>``, ordered), and names the event
before it (``prev``, as :mod:`engine.store.changes` does), so a reader can tell "the events
after my position were trimmed" (it must catch up another way) from "only my own last
event was trimmed" (nothing lost). An event is written after the picture's record, only
when the picture (or a partner's hash reference, :mod:`engine.hash_import`) is new and
matched at least one earlier picture (accepted or to-review); noise pictures (:mod:`engine.noise`)
are never named, and a picture answered as noise writes nothing;
adding the same bytes again writes nothing, so a reader never sees one addition twice.

On a Redis Cluster the stream is one key on one master, appended once per added picture
that matched something (well below the change stream's rate, which every add appends to).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import redis
from redis.cluster import RedisCluster

from engine.errors import BadInput
from engine.store import keys

MAXLEN = 100_000  # events kept, approximately; a reader further behind is told it missed some
START = "0-0"
MAX_PAGE = 1000  # events one read answers at most
_POSITION = re.compile(r"^\d{1,20}(-\d{1,20})?$")

# KEYS[1] stream; ARGV: maxlen, then field/value pairs. Adds prev: the newest event before it.
_PUBLISH = """
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = newest[1] and newest[1][1] or '0-0'
local args = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'prev', prev}
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
return redis.call(unpack(args))
"""


@dataclass(frozen=True)
class MatchEvent:
    """A new picture and the earlier pictures it matched, best first."""

    event: str  # the stream id: the position to read after
    id: str
    name: str
    cluster: int
    added: str  # ISO 8601 UTC, as the picture's record says
    tags: list[str]
    metadata: dict
    matches: list[dict]  # {"id", "name", "decision", "distance", "reason"?}

    def to_json(self) -> dict:
        return {"event": self.event, "id": self.id, "name": self.name, "cluster": self.cluster,
                "added": self.added, "tags": self.tags, "metadata": self.metadata, "matches": self.matches}


class MatchEvents:
    """Append to and read from the match-event stream; the connection is passed in."""

    def __init__(self, client: redis.Redis | RedisCluster, key: str = keys.MATCH_EVENTS,
                 maxlen: int = MAXLEN) -> None:
        self.redis = client
        self.key = key
        self.maxlen = maxlen
        self._publish = client.register_script(_PUBLISH)

    def publish(self, record: dict, matches: list[dict]) -> str:
        """Append one event for the new picture ``record`` (its JSON) and its ``matches``."""
        fields = {"id": record["id"], "name": record.get("name", ""),
                  "cluster": str(record.get("cluster", 0)),
                  "added": record.get("added", ""), "tags": json.dumps(list(record.get("tags", []))),
                  "metadata": json.dumps(record.get("metadata") or {}), "matches": json.dumps(matches)}
        args = [self.maxlen] + [part for pair in fields.items() for part in pair]
        return _text(self._publish(keys=[self.key], args=args))

    def read(self, after: str = START, limit: int = 100) -> dict:
        """Events strictly after position ``after``, oldest first, at most ``limit``.

        ``next`` is the position to read after next time (the last event's, or ``after`` when
        none); ``missed`` is true when events after ``after`` were trimmed before being read.
        """
        after = check_position(after)
        if not 1 <= limit <= MAX_PAGE:
            raise BadInput(f"limit must be between 1 and {MAX_PAGE}")
        reply = self.redis.xread({self.key: after}, count=limit)
        events = [_event(stream_id, values) for stream_id, values in (reply[0][1] if reply else [])]
        return {"events": [e.to_json() for e in events], "next": events[-1].event if events else after,
                "missed": self._missed(after)}

    def last(self) -> str:
        """Position of the newest event (``0-0`` when none): a reader starting there sees new ones only."""
        newest = self.redis.xrevrange(self.key, count=1)
        return _text(newest[0][0]) if newest else START

    def _missed(self, after: str) -> bool:
        oldest = self.redis.xrange(self.key, count=1)
        if not oldest or _order(_text(oldest[0][0])) <= _order(after):
            return False
        prev = {_text(k): _text(v) for k, v in oldest[0][1].items()}.get("prev", START)
        # the oldest kept event follows the reader's position directly, or a trimmed one came between
        return _order(prev) > _order(after)


def check_position(value: str | None) -> str:
    """A stream position as clients send it (``<ms>-<seq>`` or ``<ms>``); 400 for anything else."""
    value = (value or START).strip()
    if not _POSITION.match(value):
        raise BadInput("after must be an event position like 1733490000000-0 (or 0 for the beginning)")
    return value if "-" in value else f"{value}-0"


def _event(stream_id: bytes | str, values: dict) -> MatchEvent:
    fields = {_text(k): _text(v) for k, v in values.items()}
    return MatchEvent(_text(stream_id), fields.get("id", ""), fields.get("name", ""),
                      int(fields.get("cluster") or 0), fields.get("added", ""),
                      json.loads(fields.get("tags") or "[]"), json.loads(fields.get("metadata") or "{}"),
                      json.loads(fields.get("matches") or "[]"))


def _order(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

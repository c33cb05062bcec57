"""The review queue: to-review matches, an analyst's verdicts, and the labelled list they make.

Why: "to-review" means the engine could not decide, so a human looks. Each
verdict is a labelled pair (same / different) with every algorithm's distance
at the time — exactly what ``quaid calibrate`` needs to move thresholds so that
fewer pairs land in review next time.

Items are recorded by :func:`search_and_record`, the one search every path
runs: the API, the web UI, batch jobs, and the local ``quaid search`` and
``quaid ail-import`` (with ``--server`` they go through the API); a search by a
partner's hashes by :func:`search_hashes_and_record` (API and ``quaid search
--hash``). Such an item has no picture: it keeps the hashes searched for and says
``"evidence": "hashes-only"``; its query id is the id those hashes would have as a
stored hash-only reference (:func:`engine.hash_import.reference_id`).
Re-searching the same picture does not duplicate an item, and a pair already
judged is not queued again. Evaluation and calibration search without
recording: their queries are test pictures, not cases for an analyst.

The HTTP side is :mod:`engine.service.review`.

Storage: one hash per item (:func:`keys.review_item`) holding the query's
thumbnail (JPEG, ``THUMB_SIDE`` pixels, since the query itself is not stored)
and two sorted sets indexing pending and reviewed items; for the newest
searched pictures, their ORB features (:func:`keys.review_query`), from which
the visual difference of an item is drawn (:mod:`engine.compare`). The pending queue is
capped (``MAX_PENDING``): the oldest unreviewed items are dropped first.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from collections.abc import Mapping, Sequence

import redis
from PIL import Image

from engine.errors import BadInput, NotFound
from engine.store import keys
from engine.store.records import HASH_ONLY_REASON

THUMB_SIDE = 320  # pixels, long side of the stored query thumbnail
MAX_PENDING = 10_000  # unreviewed items kept
# Searched pictures whose ORB features are kept for the visual difference of their items (about
# 0.3 MB each: keypoints, thumbnail, detail picture); older ones are compared only once stored.
KEPT_QUERY_FEATURES = 1000
VERDICTS = ("accepted", "rejected", "noise")  # noise: the pair says nothing (engine.noise)


class ReviewQueue:
    """Record to-review matches and verdicts; the connection is passed in (binary responses)."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection

    def record(self, query_bytes: bytes, query_name: str, result: dict,
               query_features: Sequence[bytes] = ()) -> list[str]:
        """Queue every to-review match of a search ``result`` (search JSON); returns item ids.

        ``query_features``: the query's ORB features (one per orientation searched), kept for the
        visual difference of its items (:meth:`query_features`) while the query is among the
        KEPT_QUERY_FEATURES newest ones.
        """
        if not _to_review(result):
            return []
        query = hashlib.sha256(query_bytes).hexdigest()
        recorded = self._queue(query, query_name, result, {"thumb": _thumbnail(query_bytes)})
        if recorded and query_features:
            self._keep_features(query, query_features)
        return recorded

    def query_features(self, query: str) -> list[bytes]:
        """The ORB features kept for searched picture ``query`` (empty when not or no longer kept)."""
        kept = self.redis.hgetall(keys.review_query(query)) if _valid_query(query) else {}
        return [kept[k] for k in sorted(kept, key=lambda k: int(_text(k)))]

    def _keep_features(self, query: str, features: Sequence[bytes]) -> None:
        self.redis.delete(keys.review_query(query))
        self.redis.hset(keys.review_query(query), mapping={str(i): f for i, f in enumerate(features)})
        self.redis.zadd(keys.REVIEW_QUERIES, {query: time.time()})
        excess = self.redis.zcard(keys.REVIEW_QUERIES) - KEPT_QUERY_FEATURES
        if excess > 0:
            for raw, _ in self.redis.zpopmin(keys.REVIEW_QUERIES, excess):
                self.redis.delete(keys.review_query(_text(raw)))

    def record_hashes(self, hashes: Mapping[str, str], query_name: str, result: dict) -> list[str]:
        """Queue every to-review match of a search by ``hashes`` (checked ones); returns item ids."""
        from engine.hash_import import reference_id

        if not _to_review(result):
            return []
        extra = {"thumb": b"", "evidence": HASH_ONLY_REASON,
                 "hashes": json.dumps(dict(hashes), sort_keys=True)}
        return self._queue(reference_id(hashes), query_name, result, extra)

    def _queue(self, query: str, query_name: str, result: dict, extra: dict) -> list[str]:
        recorded = []
        for match in _to_review(result):
            item = item_id(query, match["id"])
            fields = {
                "query": query, "query_name": query_name, "match": match["id"],
                "match_name": match.get("name", ""), "distance": match.get("distance", 0.0),
                "algorithms": json.dumps(match.get("algorithms", {})),
                "recorded": time.time(), "verdict": "", **extra,
            }
            if self.redis.hsetnx(keys.review_item(item), "query", query):  # first time seen
                self.redis.hset(keys.review_item(item), mapping=fields)
                self.redis.zadd(keys.REVIEW_PENDING, {item: fields["recorded"]})
                recorded.append(item)
        self._cap()
        return recorded

    def items(self, status: str = "pending", limit: int = 50, offset: int = 0) -> dict:
        """Pending items oldest first, or reviewed items newest first."""
        if status not in ("pending", "done"):
            raise BadInput("status must be pending or done")
        index = keys.REVIEW_PENDING if status == "pending" else keys.REVIEW_DONE
        if status == "pending":
            ids = self.redis.zrange(index, offset, offset + limit - 1)
        else:
            ids = self.redis.zrevrange(index, offset, offset + limit - 1)
        items = [self.get(_text(i)) for i in ids]
        return {"status": status, "total": self.redis.zcard(index),
                "items": [i for i in items if i is not None]}

    def get(self, item: str) -> dict | None:
        raw = self.redis.hgetall(keys.review_item(item)) if _valid_item(item) else {}
        if not raw:
            return None
        fields = {_text(k): v for k, v in raw.items() if _text(k) != "thumb"}
        text = {k: _text(v) for k, v in fields.items()}
        out = {
            "item": item, "query": text["query"], "query_name": text.get("query_name", ""),
            "match": text["match"], "match_name": text.get("match_name", ""),
            "distance": float(text.get("distance") or 0.0),
            "algorithms": json.loads(text.get("algorithms") or "{}"),
            "recorded": float(text.get("recorded") or 0.0), "verdict": text.get("verdict") or None,
        }
        if text.get("reviewed"):
            out["reviewed"] = float(text["reviewed"])
        if text.get("evidence"):
            out["evidence"] = text["evidence"]
            out["hashes"] = json.loads(text.get("hashes") or "{}")
        return out

    def thumbnail(self, item: str) -> bytes:
        data = self.redis.hget(keys.review_item(item), "thumb") if _valid_item(item) else None
        if not data:
            raise NotFound(f"no review item {item[:80]}")
        return data

    def judge(self, item: str, verdict: str) -> dict:
        """Store an analyst's verdict (accepted / rejected / noise); judging again overwrites it.
        A noise verdict marks nothing by itself: :func:`judge_and_mark` does."""
        if verdict not in VERDICTS:
            raise BadInput(f"verdict must be one of {', '.join(VERDICTS)}")
        if self.get(item) is None:
            raise NotFound(f"no review item {item[:80]}")
        now = time.time()
        self.redis.hset(keys.review_item(item), mapping={"verdict": verdict, "reviewed": now})
        self.redis.zrem(keys.REVIEW_PENDING, item)
        self.redis.zadd(keys.REVIEW_DONE, {item: now})
        return self.get(item)  # type: ignore[return-value]

    def labels(self) -> list[dict]:
        """Every judged pair: ``{"query", "match", "same": bool, "distance", "algorithms"}``.

        ``same`` is the analyst's answer; ``algorithms`` holds each algorithm's
        distance when the pair was searched, which is what calibration fits.
        Pairs searched by hashes are left out: their votes are the exchanged hashes'
        distances (named by hash, compared with whichever stored feature holds that
        hash), not the algorithms' own, and would move the algorithms' thresholds.
        So are pairs judged noise: they say the pictures are uninformative, not whether
        they are the same.
        """
        out = []
        for raw in self.redis.zrange(keys.REVIEW_DONE, 0, -1):
            item = self.get(_text(raw))
            if item and item["verdict"] in ("accepted", "rejected") and "evidence" not in item:
                out.append({"query": item["query"], "match": item["match"],
                            "same": item["verdict"] == "accepted", "verdict": item["verdict"],
                            "distance": item["distance"], "algorithms": item["algorithms"]})
        return out

    def _cap(self) -> None:
        excess = self.redis.zcard(keys.REVIEW_PENDING) - MAX_PENDING
        if excess > 0:
            for raw, _ in self.redis.zpopmin(keys.REVIEW_PENDING, excess):
                self.redis.delete(keys.review_item(_text(raw)))


def judge_and_mark(quaid, reviews: ReviewQueue, item: str, verdict: str) -> dict:
    """Store the verdict; a noise verdict also puts the pair's stored pictures in the noise bank
    (the match, and the query when it is stored too), so neither is reported as a match again."""
    from engine.noise import REVIEWED

    judged = reviews.judge(item, verdict)
    if verdict == "noise":
        for picture_id in (judged["match"], judged["query"]):
            try:
                quaid.noise.mark(picture_id, REVIEWED)
            except NotFound:  # the query is rarely stored; the match may be deleted since
                continue
    return judged


def search_and_record(quaid, reviews: ReviewQueue, data: bytes, name: str, top: int = 10,
                      include_rejected: bool = False, domain: str | list[str] | None = None) -> dict:
    """Search ``data`` with the engine facade and queue its to-review matches for an analyst;
    the search JSON (``{"decision", "matches"}``). ``name`` names the query in the queue;
    ``domain``: where the query was seen, for brand verdicts (:mod:`engine.brands`)."""
    found = quaid.search(data, top=top, include_rejected=include_rejected, domain=domain)
    result = found.to_json()
    reviews.record(data, name, result, _orb_features(getattr(found, "query", None)))
    return result


def _orb_features(query) -> list[bytes]:
    """The query's ORB features when the search extracted them (it does to verify a to-review match)."""
    if query is None or "orb" not in getattr(query, "extracted", ()):
        return []
    return list(query.features("orb"))


def search_hashes_and_record(quaid, reviews: ReviewQueue, hashes: object, top: int = 10,
                             include_rejected: bool = False, domain: str | list[str] | None = None) -> dict:
    """Search a partner's ``hashes`` with the engine facade and queue its to-review matches,
    named by the hashes (``name=value``, as ``quaid search --hash`` writes them); ``domain``:
    where the hashed page was seen, for brand verdicts."""
    from engine.hash_search import parse_hashes

    result = quaid.search_hashes(hashes, top=top, include_rejected=include_rejected, domain=domain)
    checked = parse_hashes(hashes)
    reviews.record_hashes(checked, " ".join(f"{n}={v}" for n, v in sorted(checked.items())), result)
    return result


def _to_review(result: dict) -> list[dict]:
    return [m for m in result.get("matches", []) if m.get("decision") == "to-review"]


def item_id(query: str, match: str) -> str:
    """Stable id of a (query, match) pair: 32 hex characters."""
    return hashlib.sha256(f"{query}:{match}".encode()).hexdigest()[:32]


def _thumbnail(data: bytes) -> bytes:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            image.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
            image = image.convert("RGB")
            image.thumbnail((THUMB_SIDE, THUMB_SIDE))
            out = io.BytesIO()
            image.save(out, "JPEG", quality=80)
            return out.getvalue()
    except Exception:  # the search already decoded it; a thumbnail is a convenience
        return b""


def _valid_query(query: str) -> bool:
    return len(query) == 64 and all(c in "0123456789abcdef" for c in query)


def _valid_item(item: str) -> bool:
    return len(item) == 32 and all(c in "0123456789abcdef" for c in item)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

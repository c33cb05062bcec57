"""The noise bank: stored pictures that say nothing, kept out of every answer.

Why: blank pages, browser and server error pages, bot challenges, parked domains
and placeholder pictures look alike whatever site they come from. Reported as
matches, they tie unrelated captures together and flood analysts. So, as Meta's
HMA keeps a banked item but switches matching against it off (its bank content's
``disable_until_ts``), and as a MISP warninglist flags a known false positive
instead of deleting it, a noise picture stays stored (an analyst can take it out
again) but:

* it is never reported as a match (search, a stored picture's matches, clusters of
  new pictures);
* a query whose best match (accepted or to-review) is a noise picture is answered
  as noise, naming that picture;
* a query the low-information detector (:mod:`engine.low_information`) flags is
  answered as noise too;
* a picture added while it would be answered as noise is stored in the noise bank
  at once, with the reason (an analyst can take it out).

The answer keeps its ``decision`` (computed from the other matches, ``rejected``
when a noise picture was the only one) and gains ``"noise": {"reason", "picture"}``;
clients that know nothing of it keep working, and the MISP and AIL connectors tag
and correlate nothing for such an answer.

A mark lives in the picture's record (``noise`` field, :meth:`RecordStore.set_noise`),
so a search reads it with the records it fetches anyway, and it goes when the
picture is deleted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from engine.decision import Decision
from engine.errors import BadInput, NotFound
from engine.store import keys
from engine.store.records import PictureRecord, RecordStore

MARKED = "marked"  # an analyst marked it (API, CLI, web UI)
REVIEWED = "review"  # an analyst's review verdict "noise" on one of its matches
LOW_INFORMATION = "low-information"  # the detector flagged it (engine.low_information)
MATCHES_NOISE = "matches-noise"  # its best match is a noise picture
REASONS = (MARKED, REVIEWED, LOW_INFORMATION, MATCHES_NOISE)


@dataclass(frozen=True)
class Noise:
    """Why a picture (stored, or a query) is noise: ``picture`` is the noise picture it matched."""

    reason: str
    picture: str | None = None
    at: float = 0.0  # seconds since the epoch (stored marks only)
    measures: dict | None = None  # the detector's measures, when it flagged the picture

    def to_json(self) -> dict:
        """As the API answers it: always ``reason`` and ``picture``; ``at``, ``measures`` when known."""
        answer: dict = {"reason": self.reason, "picture": self.picture}
        if self.at:
            answer["at"] = round(self.at, 3)
        if self.measures is not None:
            answer["measures"] = self.measures
        return answer

    @classmethod
    def from_json(cls, value: dict) -> Noise:
        return cls(str(value.get("reason", MARKED)), value.get("picture"), float(value.get("at", 0.0)),
                   value.get("measures"))

    def stamped(self) -> Noise:
        """The same mark with the current time (what is stored)."""
        return Noise(self.reason, self.picture, time.time(), self.measures)


class Candidate(Protocol):
    """What :func:`answer` needs of a match (engine.results.Match has it)."""

    id: str
    noise: Noise | None

    @property
    def decision(self) -> Decision: ...


M = TypeVar("M", bound=Candidate)


def flagged(measures: dict | None) -> Noise | None:
    """The query's noise answer from the detector's measures (None: the detector did not flag it)."""
    return Noise(LOW_INFORMATION, measures=measures) if measures is not None else None


def without_noise(matches: Sequence[M], flagged: Noise | None) -> tuple[list[M], Noise | None]:
    """The matches without noise pictures, and why the query is noise (or None).

    ``matches`` are sorted best first; ``flagged``: the detector's verdict on the query.
    A best match that is a noise picture takes precedence (it names the picture).
    """
    best = next((m for m in matches if m.decision != Decision.REJECTED), None)
    if best is not None and best.noise is not None:
        flagged = Noise(MATCHES_NOISE, best.id)
    return [m for m in matches if m.noise is None], flagged


def mark_of(record: PictureRecord) -> Noise | None:
    """The noise mark a stored record carries, or None."""
    return Noise.from_json(record.noise) if record.noise is not None else None


class NoiseBank:
    """Mark, unmark and list noise pictures; the store is passed in (:class:`RecordStore`)."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def mark(self, picture_id: str, reason: str = MARKED, picture: str | None = None) -> PictureRecord:
        """Put a stored picture in the noise bank (marking it again replaces the reason)."""
        if reason not in REASONS:
            raise BadInput(f"reason must be one of {', '.join(REASONS)}")
        if not self.records.set_noise(picture_id, Noise(reason, picture).stamped().to_json()):
            raise NotFound(f"no picture with id {picture_id}")
        return self._record(picture_id)

    def unmark(self, picture_id: str) -> PictureRecord:
        """Take a picture out of the noise bank: it is reported as a match again."""
        if not self.records.set_noise(picture_id, None):
            raise NotFound(f"no picture with id {picture_id}")
        return self._record(picture_id)

    def index(self, picture_id: str, mark: Noise) -> None:
        """List a picture stored with its mark already in its record (an add)."""
        self.records.redis.zadd(keys.NOISE, {picture_id: mark.at or time.time()})

    def list(self, offset: int = 0, limit: int = 100) -> dict:
        """Noise pictures, most recently marked first: ``{"total", "offset", "pictures": [record JSON]}``."""
        ids = self.records.noise_ids(offset, limit)
        records = self.records.get_many(ids)
        gone = [i for i in ids if i not in records or records[i].noise is None]
        self.records.forget_noise(gone)  # deleted, or unmarked, by a process that died before its index write
        pictures = [records[i].to_json() for i in ids if i not in gone]
        return {"total": self.records.noise_count(), "offset": offset, "pictures": pictures}

    def count(self) -> int:
        return self.records.noise_count()

    def _record(self, picture_id: str) -> PictureRecord:
        record = self.records.get(picture_id)
        if record is None:  # deleted meanwhile
            raise NotFound(f"no picture with id {picture_id}")
        return record

"""The write-back run: select events, send their pictures to quaid, record the matches.

Two passes over the pictures of the selected events, so that pictures of the same run find
each other whatever their order: first every picture is registered in quaid (with its MISP
event and attribute uuids as metadata), then every picture is searched and its accepted or
to-review matches that sit in another MISP event are recorded by the :class:`Recorder`.

Where a matching picture is in MISP comes from the pictures of this run (the same bytes may
be attached to several events) and from the metadata quaid keeps with the match (pictures
registered by earlier runs or by the expansion module with ``register``).
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pymisp import MISPEvent, PyMISP, PyMISPError

from quaid_misp_sync.pictures import PictureRef, event_pictures
from quaid_misp_sync.quaid_api import DEFAULT_TOP, QuaidAPI, QuaidAPIError
from quaid_misp_sync.recorder import MISPWriteError, Recorder, Target

LOGGER = logging.getLogger("quaid-misp-sync")
ANSWERED = ("accepted", "to-review")

Progress = Callable[[Iterable, str], Iterable]


class SyncError(Exception):
    """The run cannot start or go on (MISP search refused, quaid down)."""


@dataclass(frozen=True)
class Selection:
    """Which events to run over; at least one criterion (MISP restSearch filters)."""

    event: str | None = None  # id or uuid
    since: str | None = None  # YYYY-MM-DD, event date
    tag: str | None = None

    def search_filters(self) -> dict:
        filters = {"eventid": self.event, "date_from": self.since, "tags": self.tag}
        filters = {key: value for key, value in filters.items() if value}
        if not filters:
            raise SyncError("select events with an event id, a date or a tag")
        return filters


def no_progress(items: Iterable, _label: str) -> Iterable:
    return items


def select_events(misp: PyMISP, selection: Selection) -> list[MISPEvent]:
    """The selected events with their attachments' bytes (``POST /events/restSearch``)."""
    answer = misp.search(
        controller="events", with_attachments=True, pythonify=True, **selection.search_filters()
    )
    if isinstance(answer, dict):
        raise SyncError(f"MISP search failed: {answer.get('errors', answer)}")
    return list(answer)


def run_sync(
    misp: PyMISP,
    quaid: QuaidAPI,
    selection: Selection,
    dry_run: bool = False,
    top: int = DEFAULT_TOP,
    progress: Progress = no_progress,
) -> Counter:
    """One write-back run; returns the counts printed as the summary."""
    events = select_events(misp, selection)
    pictures = [picture for event in events for picture in event_pictures(event)]
    counts: Counter[str] = Counter(events=len(events), pictures=len(pictures))
    here: dict[str, list[PictureRef]] = {}
    for picture in pictures:
        here.setdefault(picture.picture_id, []).append(picture)
    if not dry_run:
        for picture in progress(pictures, "register in quaid"):
            _register(quaid, picture, counts)
    recorder = Recorder(misp, quaid.url, misp.root_url, dry_run=dry_run)
    locations = _Locations(quaid, here)
    for picture in progress(pictures, "search and record"):
        try:
            matches = _matches(quaid, picture, top)
        except QuaidAPIError as exc:
            _fail(counts, picture, exc)
            continue
        counts["matches"] += len(matches)
        for match in matches:
            for target in locations.targets(match, picture):
                counts["matches in other events"] += 1
                try:
                    recorder.record(picture, target)
                except (MISPWriteError, PyMISPError) as exc:
                    _fail(counts, picture, exc)
    counts.update(recorder.counts)
    return counts


def _register(quaid: QuaidAPI, picture: PictureRef, counts: Counter) -> None:
    try:
        answer = quaid.add(picture.data, picture.name, picture.location)
        counts[f"pictures {answer.get('status', 'added')}"] += 1
    except QuaidAPIError as exc:
        if exc.status == 0:
            raise SyncError(str(exc)) from None
        _fail(counts, picture, exc)


def _matches(quaid: QuaidAPI, picture: PictureRef, top: int) -> list[dict]:
    """Accepted and to-review matches; the picture's own bytes count as an accepted match
    (the same file attached to several events), whether or not quaid lists itself."""
    answer = quaid.search(picture.data, picture.name, top)
    matches = [m for m in answer.get("matches") or [] if m.get("decision") in ANSWERED]
    if not any(m.get("id") == picture.picture_id for m in matches):
        matches.append(
            {"id": picture.picture_id, "name": picture.name, "decision": "accepted", "distance": 0.0}
        )
    return matches


class _Locations:
    """Where the pictures of matches are in MISP: this run's pictures, then quaid's metadata."""

    def __init__(self, quaid: QuaidAPI, here: dict[str, list[PictureRef]]):
        self.quaid = quaid
        self.here = here
        self.metadata: dict[str, dict] = {}

    def targets(self, match: dict, picture: PictureRef) -> list[Target]:
        picture_id = str(match.get("id", ""))
        places = [p.location | {"name": p.name} for p in self.here.get(picture_id, [])]
        stored = self._stored(match)
        if stored.get("misp_event_uuid") and stored.get("misp_attribute_uuid"):
            places.append(stored)
        targets, seen = [], set()
        for place in places:
            key = place["misp_attribute_uuid"]
            if place["misp_event_uuid"] == picture.event.uuid or key in seen:
                continue
            seen.add(key)
            targets.append(
                Target(
                    picture_id=picture_id,
                    name=str(place.get("name") or match.get("name") or picture_id[:16]),
                    event_uuid=str(place["misp_event_uuid"]),
                    attribute_uuid=str(key),
                    decision=str(match["decision"]),
                    explanation=describe(match),
                )
            )
        return targets

    def _stored(self, match: dict) -> dict:
        picture_id = str(match.get("id", ""))
        if isinstance(match.get("metadata"), dict):
            return match["metadata"] | {"name": match.get("name")}
        if picture_id not in self.metadata:
            try:
                record = self.quaid.get(picture_id)
                self.metadata[picture_id] = (record.get("metadata") or {}) | {"name": record.get("name")}
            except QuaidAPIError:
                self.metadata[picture_id] = {}
        return self.metadata[picture_id]


def describe(match: dict) -> str:
    """quaid's answer in one line: decision, merged distance, every algorithm's vote."""
    votes = ", ".join(
        f"{name} {vote.get('decision', '?')} {float(vote.get('distance', 0.0)):.3f}"
        for name, vote in sorted((match.get("algorithms") or {}).items())
    )
    distance = float(match.get("distance", 0.0))
    if not votes:
        votes = "none (identical bytes)" if distance == 0.0 and "algorithms" not in match else "none"
    return f"quaid: {match.get('decision')} (distance {distance:.3f}); votes: {votes}"


def _fail(counts: Counter, picture: PictureRef, exc: Exception) -> None:
    counts["errors"] += 1
    if isinstance(exc, QuaidAPIError) and exc.status == 415:
        counts["errors"] -= 1
        counts["not pictures"] += 1
        return
    print(
        f"quaid misp-sync: event {picture.event.uuid} attachment {picture.attribute.uuid}: {exc}",
        file=sys.stderr,
    )

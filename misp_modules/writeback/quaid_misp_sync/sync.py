"""The write-back run: select events, send their pictures to quaid, record the matches.

Two passes over the pictures of the selected events, so that pictures of the same run find
each other whatever their order: first every picture is registered in quaid (with its MISP
event and attribute uuids as metadata), then every picture is searched and its accepted or
to-review matches that sit in another MISP event are recorded by the :class:`Recorder`.

Where a matching picture is in MISP comes from the pictures of this run (the same bytes may
be attached to several events) and from the metadata quaid keeps with the match (pictures
registered by earlier runs, by the expansion module with ``register`` or by the import
module). A picture known only from metadata is looked up in MISP with this key: an event
the key cannot see, or an attachment no longer there, is never named.

Only events created by the key's organisation are written into (unless the policy says
otherwise): pulled events and events of other organisations are left as their owners made
them. The events are read page by page (restSearch ``limit`` / ``page``).

Each picture is searched with the domains its event names (``url``, ``domain``, ``hostname``
attributes, in objects too): a picture that looks like a brand baseline stored in quaid on
an event whose domains are not all the brand's is ``phishing-suspected``, and its attachment
is tagged so (:meth:`Recorder.flag_phishing`).
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pymisp import MISPEvent, PyMISP, PyMISPError

from quaid_client import QuaidClient, ServiceError
from quaid_misp_sync import DEFAULT_TOP
from quaid_misp_sync.pictures import PictureRef, event_pictures
from quaid_misp_sync.policy import Sharing, WritePolicy, event_sharing
from quaid_misp_sync.recorder import MISPWriteError, Recorder, Target

LOGGER = logging.getLogger("quaid-misp-sync")
ANSWERED = ("accepted", "to-review")
# Attribute types naming where a picture was seen (their host is what quaid judges brands by).
DOMAIN_TYPES = ("url", "domain", "hostname", "domain|ip", "hostname|port")
MAX_DOMAINS = 50  # hosts sent with one search (quaid refuses more)
PAGE_SIZE = 20  # events per restSearch page (with their attachments' bytes)

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


def select_events(misp: PyMISP, selection: Selection, page_size: int = PAGE_SIZE) -> list[MISPEvent]:
    """The selected events with their attachments' bytes (``POST /events/restSearch``, paged)."""
    events: list[MISPEvent] = []
    filters = selection.search_filters()
    for page in range(1, 10**6):
        answer = misp.search(
            controller="events", with_attachments=True, pythonify=True, limit=page_size, page=page, **filters
        )
        if isinstance(answer, dict):
            raise SyncError(f"MISP search failed: {answer.get('errors', answer)}")
        events += answer
        if len(answer) < page_size:
            break
    return events


def own_organisation(misp: PyMISP) -> str:
    """The organisation of the API key's user (``GET /users/view/me``)."""
    answer = misp.get_user()
    if not isinstance(answer, dict) or "User" not in answer:
        raise SyncError(f"MISP did not tell who the key belongs to: {answer}")
    return str(answer["User"]["org_id"])


def run_sync(
    misp: PyMISP,
    quaid: QuaidClient,
    selection: Selection,
    dry_run: bool = False,
    top: int = DEFAULT_TOP,
    progress: Progress = no_progress,
    policy: WritePolicy | None = None,
    page_size: int = PAGE_SIZE,
    quaid_ui: str = "",
) -> tuple[Counter, Recorder]:
    """One write-back run; returns the counts printed as the summary, and the recorder
    (its ``planned`` lists every write, sent or not)."""
    policy = policy or WritePolicy()
    mine = own_organisation(misp)
    events = select_events(misp, selection, page_size)
    pictures = [picture for event in events for picture in event_pictures(event)]
    counts: Counter[str] = Counter(events=len(events), pictures=len(pictures))
    writable = {e.uuid for e in events if policy.other_orgs or str(getattr(e, "orgc_id", "")) == mine}
    counts["events of other organisations left alone"] = len(events) - len(writable)
    was_published = {e.uuid for e in events if getattr(e, "published", False)}
    here: dict[str, list[PictureRef]] = {}
    for picture in pictures:
        here.setdefault(picture.picture_id, []).append(picture)
    if not dry_run:
        for picture in progress(pictures, "register in quaid"):
            _register(quaid, picture, counts)
    recorder = Recorder(misp, quaid_ui or quaid.url, misp.root_url, dry_run=dry_run, policy=policy,
                        diff=_differ(quaid, counts) if policy.attach_diff else None)
    locations = _Locations(quaid, misp, here)
    for picture in progress([p for p in pictures if p.event.uuid in writable], "search and record"):
        try:
            matches = _matches(quaid, picture, top, event_domains(picture.event))
        except ServiceError as exc:
            _fail(counts, picture, exc)
            continue
        if matches is None:
            counts["pictures answered as noise (nothing recorded)"] += 1
            continue
        counts["matches"] += len(matches)
        if any(m.get("verdict") == "phishing-suspected" for m in matches):
            counts["pictures phishing-suspected"] += 1
            try:
                recorder.flag_phishing(picture)
            except (MISPWriteError, PyMISPError) as exc:
                _fail(counts, picture, exc)
        for match in matches:
            for target in locations.targets(match, picture):
                counts["matches in other events"] += 1
                _hashes(quaid, picture, policy, counts)
                try:
                    recorder.record(picture, target)
                except (MISPWriteError, PyMISPError) as exc:
                    _fail(counts, picture, exc)
    counts["matches in events this key cannot see"] = locations.unseen
    _publish_state(recorder, was_published, counts)
    counts.update(recorder.counts)
    return +counts, recorder


def _publish_state(recorder: Recorder, was_published: set[str], counts: Counter) -> None:
    """MISP unpublishes an event on every object, reference or global tag written into it:
    publish those that were published again when asked, otherwise say which ones stay so."""
    for event_uuid, event in recorder.unpublishing.items():
        if event_uuid not in was_published:
            continue
        if not recorder.policy.republish:
            recorder.planned.append(f"event {event_uuid}: was published; the writes above unpublish it")
            counts["published events left unpublished by the writes"] += 1
            continue
        try:
            recorder.publish(event)
            counts["events published again"] += 1
        except (MISPWriteError, PyMISPError) as exc:
            counts["errors"] += 1
            print(f"quaid misp-sync: event {event_uuid}: publishing failed: {exc}", file=sys.stderr)


def _differ(quaid: QuaidClient, counts: Counter) -> Callable[[str, str], bytes | None]:
    """quaid's drawing of picture b aligned onto picture a, or None (counted) when it cannot draw it."""

    def diff(a: str, b: str) -> bytes | None:
        try:
            return quaid.compare(a, b)
        except ServiceError as exc:
            counts["differences not drawn"] += 1
            print(f"quaid misp-sync: no difference drawn for {a[:12]} / {b[:12]}: {exc}", file=sys.stderr)
            return None

    return diff


def _register(quaid: QuaidClient, picture: PictureRef, counts: Counter) -> None:
    try:
        answer = quaid.add(picture.data, name=picture.name, metadata=picture.location)
        counts[f"pictures {answer.get('status', 'added')}"] += 1
    except ServiceError as exc:
        if exc.status is None:  # nothing answered: no other picture would fare better
            raise SyncError(str(exc)) from None
        _fail(counts, picture, exc)


def _hashes(quaid: QuaidClient, picture: PictureRef, policy: WritePolicy, counts: Counter) -> None:
    """The picture's exchanged hashes, asked once, when a match will be written with them."""
    if picture.hashes is not None or policy.tag_only:
        return
    try:
        picture.hashes = quaid.hash(picture.data, name=picture.name).get("hashes") or {}
    except ServiceError as exc:
        picture.hashes = {}
        _fail(counts, picture, exc)


def event_domains(event: MISPEvent) -> list[str]:
    """The hosts, URLs and domains the event names (``DOMAIN_TYPES``, in objects too; a
    composite value keeps its first part), without repeats, at most ``MAX_DOMAINS``."""
    attributes = list(event.attributes) + [a for obj in event.objects for a in obj.attributes]
    found: list[str] = []
    for attribute in attributes:
        if attribute.type not in DOMAIN_TYPES or getattr(attribute, "deleted", False):
            continue
        value = str(attribute.value).split("|")[0].strip()
        if value and value not in found:
            found.append(value)
    return found[:MAX_DOMAINS]


def _matches(quaid: QuaidClient, picture: PictureRef, top: int, domains: list[str]) -> list[dict] | None:
    """Accepted and to-review matches; the picture's own bytes count as an accepted match
    (the same file attached to several events), whether or not quaid lists itself. Domains quaid
    cannot read (a defanged ``hxxp://evil[.]test``) leave the search without them.
    None when quaid answers the picture as noise (a blank, error, challenge or placeholder page,
    or a copy of a picture in its noise bank): such pictures tie unrelated events together, so
    nothing is recorded for them, not even the same file in two events."""
    try:
        answer = quaid.search(picture.data, top=top, name=picture.name, domain=domains or None)
    except ServiceError as exc:
        if not domains or exc.status != 400:
            raise
        LOGGER.info("event %s: quaid refused its domains (%s); searching without them",
                    picture.event.uuid, exc)
        answer = quaid.search(picture.data, top=top, name=picture.name)
    if answer.get("noise"):
        return None
    matches = [m for m in answer.get("matches") or [] if m.get("decision") in ANSWERED]
    if not any(m.get("id") == picture.picture_id for m in matches):
        matches.append(
            {"id": picture.picture_id, "name": picture.name, "decision": "accepted", "distance": 0.0}
        )
    return matches


class _Locations:
    """Where the pictures of matches are in MISP: this run's pictures, then quaid's metadata
    checked against MISP (the event must be visible to this key and still hold the attachment)."""

    def __init__(self, quaid: QuaidClient, misp: PyMISP, here: dict[str, list[PictureRef]]):
        self.quaid = quaid
        self.misp = misp
        self.here = here
        self.metadata: dict[str, dict] = {}
        self.events: dict[str, MISPEvent | None] = {}
        self.unseen = 0

    def targets(self, match: dict, picture: PictureRef) -> list[Target]:
        picture_id = str(match.get("id", ""))
        places = [
            (p.event.uuid, p.attribute.uuid, p.name, event_sharing(p.event))
            for p in self.here.get(picture_id, [])
        ]
        stored = self._stored_place(match)
        if stored is not None:
            places.append(stored)
        targets, seen = [], set()
        for event_uuid, attribute_uuid, name, sharing in places:
            if event_uuid == picture.event.uuid or attribute_uuid in seen:
                continue
            seen.add(attribute_uuid)
            targets.append(
                Target(
                    picture_id=picture_id,
                    name=str(name or match.get("name") or picture_id[:16]),
                    event_uuid=event_uuid,
                    attribute_uuid=attribute_uuid,
                    decision=str(match["decision"]),
                    explanation=describe(match),
                    sharing=sharing,
                )
            )
        return targets

    def _stored_place(self, match: dict) -> tuple[str, str, str, Sharing] | None:
        """The MISP attachment quaid's metadata names, as this key sees it in MISP, or None.
        Without an attribute uuid (pictures an import handed to a batch job), the event's
        attachment of the same file name."""
        stored = self._stored(match)
        event_key = str(stored.get("misp_event_uuid") or stored.get("misp_event_id") or "")
        if not event_key:
            return None
        event = self._event(event_key)
        attribute = _attachment(
            event, str(stored.get("misp_attribute_uuid") or ""), str(stored.get("name") or "")
        )
        if attribute is None:
            self.unseen += 1
            return None
        return event.uuid, attribute.uuid, str(attribute.value).split("|")[0], event_sharing(event)

    def _event(self, key: str) -> MISPEvent | None:
        if key not in self.events:
            try:
                answer = self.misp.get_event(key, pythonify=True)
            except PyMISPError:
                answer = None
            self.events[key] = answer if isinstance(answer, MISPEvent) else None
        return self.events[key]

    def _stored(self, match: dict) -> dict:
        picture_id = str(match.get("id", ""))
        if isinstance(match.get("metadata"), dict):
            return match["metadata"] | {"name": match.get("name")}
        if picture_id not in self.metadata:
            try:
                record = self.quaid.get(picture_id)
                self.metadata[picture_id] = (record.get("metadata") or {}) | {"name": record.get("name")}
            except ServiceError:
                self.metadata[picture_id] = {}
        return self.metadata[picture_id]


def _attachment(event: MISPEvent | None, attribute_uuid: str, name: str):
    """The attribute of ``event`` with this uuid, or (no uuid) the attachment named ``name``."""
    if event is None:
        return None
    attributes = list(event.attributes) + [a for obj in event.objects for a in obj.attributes]
    for attribute in attributes:
        if getattr(attribute, "deleted", False):
            continue
        if attribute_uuid and attribute.uuid == attribute_uuid:
            return attribute
        named = (
            attribute.type in ("attachment", "malware-sample") and str(attribute.value).split("|")[0] == name
        )
        if not attribute_uuid and name and named:
            return attribute
    return None


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
    if isinstance(exc, ServiceError) and exc.status == 415:
        counts["errors"] -= 1
        counts["not pictures"] += 1
        return
    print(
        f"quaid misp-sync: event {picture.event.uuid} attachment {picture.attribute.uuid}: {exc}",
        file=sys.stderr,
    )

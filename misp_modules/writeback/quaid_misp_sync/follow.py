"""Retroactive matches: a picture added to quaid later is recorded in the earlier events it matches.

``quaid misp-sync --follow`` reads quaid's match events (``GET /api/v1/events``) from the
position it saved last time. Each event is a new picture N and the earlier pictures it
matched; for every earlier picture that is an attachment in MISP (quaid's metadata names its
event and attribute, checked in MISP with this key), N is recorded *in that earlier event*
exactly as a write-back run records a match (:class:`quaid_misp_sync.recorder.Recorder`):
decision tags on the attachment, a stand-in ``image`` object for N and a ``similar``
reference to it. So "this new reference matches 14 pictures seen in last month's events"
reaches those 14 events.

What reaches whom is the write-back's rule: the stand-in gets the narrowest distribution of
the earlier event, N's event and the ``--distribution`` ceiling. N need not be in MISP (a
reference added with ``quaid add`` or the API): then it is named with your organisation only,
since nothing says a wider audience may know quaid's own references. A new picture of a MISP
event this key cannot see is never named. Only events created by
the key's organisation are written into (unless ``--other-orgs``); an earlier picture in an
event this key cannot see, or no longer in MISP, is counted and left alone.

Resumable and idempotent: the position is saved after each event is handled (``--state``),
and every write is looked up first, so an event handled twice writes nothing the second time.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from pymisp import MISPEvent, PyMISP, PyMISPError

from quaid_client import QuaidClient, ServiceError
from quaid_client.follow import PositionFile, follow
from quaid_misp_sync.pictures import PictureRef, event_pictures
from quaid_misp_sync.policy import ORG_ONLY, Sharing, WritePolicy, event_sharing
from quaid_misp_sync.recorder import MISPWriteError, Recorder, Target
from quaid_misp_sync.sync import ANSWERED, _differ, describe, own_organisation

Event = dict


def run_follow(misp: PyMISP, quaid: QuaidClient, state: Path, policy: WritePolicy | None = None,
               dry_run: bool = False, quaid_ui: str = "") -> tuple[Counter, Recorder]:
    """Handle every match event after the position saved in ``state``; the summary counts and
    the recorder (its ``planned`` lists every write). A dry run saves no position."""
    policy = policy or WritePolicy()
    follower = _Follower(misp, quaid, policy, own_organisation(misp))
    recorder = Recorder(misp, quaid_ui or quaid.url, misp.root_url, dry_run=dry_run, policy=policy,
                        diff=_differ(quaid, follower.counts) if policy.attach_diff else None)
    position = PositionFile(state)
    for event in follow(quaid, position.load(), save=None if dry_run else position.save,
                        on_missed=follower.missed):
        follower.counts["events"] += 1
        follower.handle(event, recorder)
    counts = follower.counts
    counts.update(recorder.counts)
    return +counts, recorder


class _Follower:
    """Finds the MISP attachments of the pictures an event names, and records the matches."""

    def __init__(self, misp: PyMISP, quaid: QuaidClient, policy: WritePolicy, mine: str):
        self.misp, self.quaid, self.policy, self.mine = misp, quaid, policy, mine
        self.counts: Counter[str] = Counter()
        self._events: dict[str, MISPEvent | None] = {}

    def handle(self, event: Event, recorder: Recorder) -> None:
        new_id, metadata = str(event["id"]), event.get("metadata") or {}
        new_places = self.places(new_id, metadata)
        if not new_places and _misp_event(metadata):
            self.counts["new pictures of events this key cannot see, not named"] += 1
            return  # as the write-back never names a picture of an event the key cannot see
        for match in event.get("matches") or []:
            if match.get("decision") not in ANSWERED:
                continue
            for earlier in self.places(str(match["id"]), self._metadata(str(match["id"]))):
                if not self._writable(earlier.event):
                    self.counts["earlier pictures in events of other organisations left alone"] += 1
                    continue
                self.counts["earlier pictures in MISP"] += 1
                for target in self.targets(new_id, event, match, new_places, earlier):
                    try:
                        recorder.record(earlier, target)
                    except (MISPWriteError, PyMISPError) as exc:
                        self.counts["errors"] += 1
                        print(f"quaid misp-sync: event {earlier.event.uuid}: {exc}", file=sys.stderr)

    def places(self, picture_id: str, metadata: dict) -> list[PictureRef]:
        """The picture's attachments in the MISP event its metadata names, as this key sees them."""
        key = _misp_event(metadata)
        if not key:
            return []
        event = self._event(key)
        found = [p for p in event_pictures(event) if p.picture_id == picture_id] if event else []
        wanted = str(metadata.get("misp_attribute_uuid") or "")
        found = [p for p in found if not wanted or p.attribute.uuid == wanted] or found
        if not found:
            self.counts["pictures named in events this key cannot see or no longer holding them"] += 1
        return found

    def targets(self, new_id: str, event: Event, match: dict, new_places: list[PictureRef],
                earlier: PictureRef) -> list[Target]:
        """The new picture as the earlier event will name it: each of its MISP attachments
        (in other events), or quaid's reference itself when it is not in MISP."""
        decision, explanation = str(match["decision"]), "retroactive " + describe(match)
        name = str(event.get("name") or new_id[:16])
        if not new_places:
            self.counts["new pictures known only to quaid"] += 1
            return [Target(new_id, name, "", "", decision, explanation, Sharing(ORG_ONLY))]
        return [Target(new_id, p.name, p.event.uuid, p.attribute.uuid, decision, explanation,
                       event_sharing(p.event))
                for p in new_places if p.event.uuid != earlier.event.uuid]

    def missed(self, position: str) -> None:
        self.counts["events dropped by quaid before they were read"] += 1
        print(f"quaid misp-sync: quaid dropped match events after {position} before they were read; "
              "run quaid misp-sync --since DATE over the events of that time to catch up", file=sys.stderr)

    def _writable(self, event: MISPEvent) -> bool:
        return self.policy.other_orgs or str(getattr(event, "orgc_id", "")) == self.mine

    def _metadata(self, picture_id: str) -> dict:
        try:
            return self.quaid.get(picture_id).get("metadata") or {}
        except ServiceError:
            return {}

    def _event(self, key: str) -> MISPEvent | None:
        """The event with its attachments' bytes (restSearch ``withAttachments``), cached."""
        if key not in self._events:
            try:
                found = self.misp.search(controller="events", eventid=key, with_attachments=True,
                                         pythonify=True, limit=1, page=1)
            except PyMISPError:
                found = []
            self._events[key] = found[0] if isinstance(found, list) and found else None
        return self._events[key]


def _misp_event(metadata: dict) -> str:
    """The MISP event quaid's metadata names (uuid or id), or ``""``."""
    return str(metadata.get("misp_event_uuid") or metadata.get("misp_event_id") or "")

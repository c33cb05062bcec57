"""Idempotent writes into MISP: decision tags, stand-in ``image`` objects, ``similar`` references.

Every method first looks in the event as MISP returned it (kept up to date with what this
run created), and writes only what is missing, so a second run writes nothing. In dry-run
mode the same decisions are taken and counted, and nothing is sent.

PyMISP calls and the MISP REST endpoints behind them:
``tag`` -> ``POST /tags/attachTagToObject``; ``add_object`` -> ``POST /objects/add/<event>``;
``add_object_reference`` -> ``POST /objectReferences/add`` (target in the same event only).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pymisp import MISPEvent, MISPObject, MISPObjectReference, PyMISP

from quaid_misp_sync.pictures import PictureRef

DECISION_TAGS: dict[str, tuple[str, ...]] = {
    "accepted": ('workflow:state="complete"', 'misp:automation-level="unsupervised"'),
    "to-review": ('workflow:todo="review"',),
}
SIMILAR = "similar"  # relationship between two pictures judged the same (MISP relationship list)
DESCRIBES = "describes"  # from the image object created around a bare attachment, to the attachment
MARK = "quaid"  # first word of the comments of objects the write-back creates


class MISPWriteError(Exception):
    """MISP refused a write (the event is left as it was for this match)."""


@dataclass(frozen=True)
class Target:
    """The matching picture, somewhere in another MISP event."""

    picture_id: str
    name: str
    event_uuid: str
    attribute_uuid: str
    decision: str
    explanation: str


class Recorder:
    """Writes the matches of one run; ``counts`` tells what was written and what was already there."""

    def __init__(self, misp: PyMISP | None, quaid_ui: str, misp_url: str, dry_run: bool = False):
        self.misp = misp
        self.quaid_ui = quaid_ui.rstrip("/")
        self.misp_url = misp_url.rstrip("/")
        self.dry_run = dry_run
        self.counts: Counter[str] = Counter()

    def record(self, picture: PictureRef, target: Target) -> None:
        """Tags on the picture's attribute, and a reference to a stand-in of the target."""
        self.tag(picture, target.decision)
        source = picture.obj or self.wrapper(picture)
        proxy = self.proxy(picture.event, target)
        self.reference(picture.event, source, proxy.uuid, target.explanation)

    def tag(self, picture: PictureRef, decision: str) -> None:
        present = {tag.name for tag in picture.attribute.tags}
        for name in DECISION_TAGS.get(decision, ()):
            if name in present:
                self.counts["tags already present"] += 1
                continue
            if not self.dry_run:
                self._check(self.misp.tag(picture.attribute.uuid, name), f"tag {name}")
            picture.attribute.add_tag(name)
            self.counts["tags added"] += 1

    def wrapper(self, picture: PictureRef) -> MISPObject:
        """The image object that describes a bare attachment (created once)."""
        for obj in picture.event.objects:
            if obj.name == "image" and _references(obj, picture.attribute.uuid, DESCRIBES):
                return obj
        obj = MISPObject("image", standalone=False)
        obj.comment = f"{MARK}: picture of attachment {picture.attribute.uuid}"
        obj.add_attribute("filename", value=picture.name, disable_correlation=True)
        obj.add_attribute("link", value=self._quaid_link(picture.picture_id), disable_correlation=True)
        obj.add_reference(picture.attribute.uuid, DESCRIBES)
        self.counts["image objects created around attachments"] += 1
        return self._add_object(picture.event, obj)

    def proxy(self, event: MISPEvent, target: Target) -> MISPObject:
        """The image object standing, in ``event``, for the target picture of another event."""
        link = self._quaid_link(target.picture_id)
        for obj in event.objects:
            if obj.name == "image" and target.attribute_uuid in (obj.comment or ""):
                if any(a.object_relation == "link" and a.value == link for a in obj.attributes):
                    return obj
        obj = MISPObject("image", standalone=False)
        obj.comment = (
            f"{MARK}: same or nearly the same picture as attachment {target.attribute_uuid} "
            f"in MISP event {target.event_uuid} ({self.misp_url}/events/view/{target.event_uuid})"
        )
        obj.add_attribute("filename", value=target.name, disable_correlation=True)
        obj.add_attribute("link", value=link, comment=target.explanation, disable_correlation=True)
        self.counts["stand-in image objects created"] += 1
        return self._add_object(event, obj)

    def reference(self, event: MISPEvent, source: MISPObject, target_uuid: str, comment: str) -> None:
        if _references(source, target_uuid, SIMILAR):
            self.counts["references already present"] += 1
            return
        reference = MISPObjectReference()
        reference.from_dict(
            object_uuid=source.uuid, referenced_uuid=target_uuid, relationship_type=SIMILAR, comment=comment
        )
        if not self.dry_run:
            self._check(self.misp.add_object_reference(reference), "object reference")
        source.ObjectReference.append(reference)
        self.counts["references added"] += 1

    def _add_object(self, event: MISPEvent, obj: MISPObject) -> MISPObject:
        """Add ``obj`` (with its references) to MISP and to the in-memory event."""
        references = list(obj.ObjectReference)
        obj.ObjectReference = []
        if not self.dry_run:
            answer = self._check(self.misp.add_object(event.uuid, obj), f"{obj.name} object")
            created = MISPObject(obj.name, standalone=False)
            created.from_dict(**answer)
            obj = created
            for reference in references:
                reference.object_uuid = obj.uuid
                self._check(self.misp.add_object_reference(reference), "object reference")
        obj.ObjectReference = list(obj.ObjectReference) + references
        event.Object.append(obj)
        return obj

    def _quaid_link(self, picture_id: str) -> str:
        return f"{self.quaid_ui}/#/picture/{picture_id}"

    @staticmethod
    def _check(answer, what: str) -> dict:
        if isinstance(answer, dict) and answer.get("errors"):
            raise MISPWriteError(f"MISP refused the {what}: {answer['errors']}")
        return answer


def _references(obj: MISPObject, target_uuid: str, relationship: str) -> bool:
    return any(
        ref.referenced_uuid == target_uuid and ref.relationship_type == relationship
        for ref in getattr(obj, "ObjectReference", [])
        if not getattr(ref, "deleted", False)
    )

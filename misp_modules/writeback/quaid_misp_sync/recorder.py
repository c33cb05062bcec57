"""Idempotent writes into MISP: decision tags, stand-in ``image`` objects, ``similar`` references,
the picture's hash where partners look for it, and the phishing tag of a brand look-alike.

Every method first looks in the event as MISP returned it (kept up to date with what this
run created), and writes only what is missing, so a second run writes nothing. In dry-run
mode the same decisions are taken and listed in ``planned``, and nothing is sent.

What reaches whom (see :mod:`quaid_misp_sync.policy`): the objects written into event B
that name event A get the narrowest distribution of A, B and the administrator's ceiling;
decision tags are local by default (MISP keeps local tags on the instance, and they do not
touch the attribute nor unpublish the event: ``TagsController::attachTagToObject``). The
decision tags are mutually exclusive: a new decision removes the tags of the old one.

The picture's hash: the ``image`` template (misp-objects) has no hash relation, and the only
template with a picture hash is ``cert-pl-phishing``, whose ``phash-dct-base64`` is perception's
pHash (CERT Polska exchanges it). So with the matches of a picture its event also gets a
``cert-pl-phishing`` object holding that value (``quaid hash``'s ``phash_dct_base64``),
describing the attachment, in the event's own distribution: partners' MISP correlates it with
their own values without quaid. It is written only with the matches it goes with, so no event
is unpublished for a hash alone.

With ``--attach-diff``, each stand-in object also carries quaid's drawing of what differs
between the two pictures (``GET /api/v1/compare``) as its ``attachment``: it shows both
pictures, so it is shared exactly as the object is (its attributes inherit the object's
distribution, the narrowest of the two events').

A picture that looks like a brand's baseline stored in quaid while its event names domains
that are not all the brand's (quaid's ``phishing-suspected``) gets ``phishing:techniques=
"fake-website"`` (taxonomy ``phishing`` v5) on its attachment, local unless ``--global-tags``:
a tag on the event's own attribute, naming nothing of another event.

PyMISP calls and the MISP REST endpoints behind them:
``tag`` -> ``POST /tags/attachTagToObject``; ``untag`` -> ``POST /tags/removeTagFromObject``;
``add_object`` -> ``POST /objects/add/<event>``; ``add_object_reference`` ->
``POST /objectReferences/add`` (target in the same event only). Objects and references
unpublish the event (``ObjectsController::add``, ``ObjectReferencesController::add``).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from pymisp import MISPEvent, MISPObject, MISPObjectReference, PyMISP

from quaid_misp_sync.pictures import PictureRef
from quaid_misp_sync.policy import INHERIT, SHARING_GROUP, Sharing, WritePolicy, narrowest

DECISION_TAGS: dict[str, tuple[str, ...]] = {
    "accepted": ('workflow:state="complete"', 'misp:automation-level="unsupervised"'),
    "to-review": ('workflow:todo="review"',),
}
ALL_DECISION_TAGS = frozenset(tag for tags in DECISION_TAGS.values() for tag in tags)
PHISHING_TAG = 'phishing:techniques="fake-website"'  # "Adversary controls a fake website to phish..."
SIMILAR = "similar"  # relationship between two pictures judged the same (MISP relationship list)
DESCRIBES = "describes"  # from the image object created around a bare attachment, to the attachment
HASH_TEMPLATE = "cert-pl-phishing"  # misp-objects: the template holding perception's pHash of a page
PHASH_RELATION = "phash-dct-base64"
MARK = "quaid"  # first word of the comments of objects the write-back creates


class MISPWriteError(Exception):
    """MISP refused a write (the event is left as it was for this match)."""


@dataclass(frozen=True)
class Target:
    """The matching picture, somewhere in another MISP event (or, with empty MISP uuids, a
    reference known only to quaid)."""

    picture_id: str
    name: str
    event_uuid: str
    attribute_uuid: str
    decision: str
    explanation: str
    sharing: Sharing  # the sharing of the target's event


class Recorder:
    """Writes the matches of one run; ``counts`` tells what was written and what was already there."""

    def __init__(
        self,
        misp: PyMISP | None,
        quaid_ui: str,
        misp_url: str,
        dry_run: bool = False,
        policy: WritePolicy | None = None,
        diff: Callable[[str, str], bytes | None] | None = None,
    ):
        """``diff(a, b)``: the PNG quaid draws of picture b aligned onto a (``--attach-diff``)."""
        self.misp = misp
        self.diff = diff
        self.quaid_ui = quaid_ui.rstrip("/")
        self.misp_url = misp_url.rstrip("/")
        self.dry_run = dry_run
        self.policy = policy or WritePolicy()
        self.counts: Counter[str] = Counter()
        self.planned: list[str] = []  # one line per write, sent or (dry run) not
        self.unpublishing: dict[str, MISPEvent] = {}  # events whose published state a write drops

    def record(self, picture: PictureRef, target: Target) -> None:
        """Tags on the picture's attribute, and (unless tag-only) a reference to a stand-in of the target."""
        self.tag(picture, target.decision)
        if self.policy.tag_only:
            return
        sharing = narrowest(self.policy.distribution, picture.event, target.sharing)
        source = picture.obj or self.wrapper(picture)
        self.hash_object(picture)
        proxy = self.proxy(picture.event, target, sharing, picture.picture_id)
        self.reference(picture.event, source, proxy.uuid, target.explanation)

    def tag(self, picture: PictureRef, decision: str) -> None:
        """The decision's tags on the attachment; the other decisions' quaid tags removed."""
        wanted = DECISION_TAGS.get(decision, ())
        present = {tag.name for tag in picture.attribute.tags}
        for old in [t for t in picture.attribute.tags if t.name in ALL_DECISION_TAGS - set(wanted)]:
            self._write(
                picture.event,
                f"remove tag {old.name} from attribute {picture.attribute.uuid}",
                lambda n=old.name: self.misp.untag(picture.attribute.uuid, n),
                global_write=not getattr(old, "local", False),
            )
            picture.attribute.tags = [t for t in picture.attribute.tags if t.name != old.name]
            self.counts["tags replaced"] += 1
        for name in wanted:
            if name in present:
                self.counts["tags already present"] += 1
                continue
            local = not self.policy.global_tags
            scope = "local" if local else "global"
            self._write(
                picture.event,
                f"{scope} tag {name} on attribute {picture.attribute.uuid}",
                lambda n=name, lo=local: self.misp.tag(picture.attribute.uuid, n, local=lo),
                global_write=not local,
            )
            picture.attribute.add_tag(name)
            self.counts["tags added"] += 1

    def flag_phishing(self, picture: PictureRef) -> None:
        """:data:`PHISHING_TAG` on the attachment (once): a brand's look outside its domains."""
        if PHISHING_TAG in {tag.name for tag in picture.attribute.tags}:
            self.counts["phishing tags already present"] += 1
            return
        local = not self.policy.global_tags
        self._write(
            picture.event,
            f"{'local' if local else 'global'} tag {PHISHING_TAG} on attribute {picture.attribute.uuid}",
            lambda: self.misp.tag(picture.attribute.uuid, PHISHING_TAG, local=local),
            global_write=not local,
        )
        picture.attribute.add_tag(PHISHING_TAG)
        self.counts["phishing tags added"] += 1

    def wrapper(self, picture: PictureRef) -> MISPObject:
        """The image object that describes a bare attachment (created once; names only B's own file)."""
        for obj in picture.event.objects:
            if obj.name == "image" and _references(obj, picture.attribute.uuid, DESCRIBES):
                return obj
        obj = MISPObject("image", standalone=False)
        obj.comment = f"{MARK}: picture of attachment {picture.attribute.uuid}"
        obj.distribution = INHERIT
        obj.add_attribute("filename", value=picture.name, disable_correlation=True, to_ids=False)
        obj.add_attribute("link", value=self._quaid_link(picture.picture_id), disable_correlation=True)
        obj.add_reference(picture.attribute.uuid, DESCRIBES)
        self.counts["image objects created around attachments"] += 1
        return self._add_object(picture.event, obj)

    def hash_object(self, picture: PictureRef) -> MISPObject | None:
        """The ``cert-pl-phishing`` object with the picture's ``phash-dct-base64`` (created once)."""
        value = (picture.hashes or {}).get("phash_dct_base64")
        if not value:
            return None
        for obj in picture.event.objects:
            if obj.name == HASH_TEMPLATE and _references(obj, picture.attribute.uuid, DESCRIBES) and any(
                a.object_relation == PHASH_RELATION and a.value == value for a in obj.attributes
            ):
                return obj
        obj = MISPObject(HASH_TEMPLATE, standalone=False)
        obj.comment = f"{MARK}: perception's pHash of attachment {picture.attribute.uuid}"
        obj.distribution = INHERIT
        obj.add_attribute(PHASH_RELATION, value=value, to_ids=False)
        obj.add_reference(picture.attribute.uuid, DESCRIBES)
        self.counts["picture hash objects created"] += 1
        return self._add_object(picture.event, obj)

    def proxy(self, event: MISPEvent, target: Target, sharing: Sharing, source_id: str = "") -> MISPObject:
        """The image object standing, in ``event``, for the target picture of another event (or
        for a reference known only to quaid); with ``--attach-diff``, the visual difference of
        the pair (``source_id``: the picture of ``event``) as its ``attachment``."""
        link = self._quaid_link(target.picture_id)
        key = target.attribute_uuid or link  # what the object's comment names
        for obj in event.objects:
            if obj.name == "image" and key in (obj.comment or ""):
                if any(a.object_relation == "link" and a.value == link for a in obj.attributes):
                    return obj
        obj = MISPObject("image", standalone=False)
        if target.attribute_uuid:
            obj.comment = (
                f"{MARK}: same or nearly the same picture as attachment {target.attribute_uuid} "
                f"in MISP event {target.event_uuid} ({self.misp_url}/events/view/{target.event_uuid})"
            )
        else:
            obj.comment = f"{MARK}: same or nearly the same picture as quaid's reference {link}"
        obj.distribution = sharing.distribution
        if sharing.distribution == SHARING_GROUP:
            obj.sharing_group_id = sharing.sharing_group_id
        obj.add_attribute("filename", value=target.name, disable_correlation=True, to_ids=False)
        obj.add_attribute("link", value=link, comment=target.explanation, disable_correlation=True)
        drawn = self.diff(source_id, target.picture_id) if self.diff is not None and source_id else None
        if drawn:
            name = f"quaid-difference-{source_id[:12]}-{target.picture_id[:12]}.png"
            # BytesIO: PyMISP reads bytes given as ``data`` as base64 text
            obj.add_attribute(
                "attachment", value=name, data=io.BytesIO(drawn), disable_correlation=True, to_ids=False,
                comment="what differs: red rewritten content, blue blocks a copy adds",
            )
            self.counts["differences attached"] += 1
        for attribute in obj.attributes:
            attribute.distribution = INHERIT  # the object's distribution
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
        self._write(
            event,
            f"reference {SIMILAR} from object {source.uuid} to object {target_uuid}",
            lambda: self.misp.add_object_reference(reference),
        )
        source.ObjectReference.append(reference)
        self.counts["references added"] += 1

    def _add_object(self, event: MISPEvent, obj: MISPObject) -> MISPObject:
        """Add ``obj`` (with its references) to MISP and to the in-memory event."""
        references = list(obj.ObjectReference)
        obj.ObjectReference = []
        answer = self._write(
            event,
            f"{obj.name} object {obj.uuid} (distribution {obj.distribution}): {obj.comment}",
            lambda: self.misp.add_object(event.uuid, obj),
        )
        if answer is not None:
            created = MISPObject(obj.name, standalone=False)
            created.from_dict(**answer)
            obj = created
        for reference in references:
            reference.object_uuid = obj.uuid
            self._write(
                event,
                f"reference {reference.relationship_type} from object {obj.uuid} "
                f"to {reference.referenced_uuid}",
                lambda r=reference: self.misp.add_object_reference(r),
            )
        obj.ObjectReference = list(obj.ObjectReference) + references
        event.Object.append(obj)
        return obj

    def _write(self, event: MISPEvent, what: str, call, global_write: bool = True):
        """One write into ``event``: listed, sent unless dry run, MISP's refusal raised."""
        self.planned.append(f"event {event.uuid}: {what}")
        if global_write:
            self.unpublishing[event.uuid] = event
        if self.dry_run:
            return None
        return self._check(call(), what.split(" (")[0])

    def publish(self, event: MISPEvent) -> None:
        """Publish ``event`` again (``POST /events/publish/<id>``)."""
        self._write(event, "publish again", lambda: self.misp.publish(event), global_write=False)

    def _quaid_link(self, picture_id: str) -> str:
        return f"{self.quaid_ui}/#/picture/{picture_id}"

    @staticmethod
    def _check(answer, what: str) -> dict:
        if isinstance(answer, dict) and answer.get("errors"):
            hint = " (run with --global-tags)" if "host organisation" in str(answer["errors"]) else ""
            raise MISPWriteError(f"MISP refused the {what}: {answer['errors']}{hint}")
        return answer


def _references(obj: MISPObject, target_uuid: str, relationship: str) -> bool:
    return any(
        ref.referenced_uuid == target_uuid and ref.relationship_type == relationship
        for ref in getattr(obj, "ObjectReference", [])
        if not getattr(ref, "deleted", False)
    )

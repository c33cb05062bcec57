"""A stand-in for a MISP instance at the HTTP boundary, for the write-back tests.

It implements the REST endpoints PyMISP calls during ``quaid misp-sync``, with request and
response bodies shaped as MISP 2.5 answers them (CakePHP JSON: ``{"Event": {...}}`` with
``Attribute`` / ``Object`` / ``Tag`` lists, ids as strings, ``ObjectReference`` lists on
objects, ``{"response": [...]}`` from restSearch):

- ``GET /servers/getVersion``, ``GET /users/view/me``, ``GET /attributes/describeTypes.json``
  (PyMISP's constructor);
- ``POST /events/restSearch`` (``eventid``, ``tags``, ``from``, ``withAttachments``, ``limit``,
  ``page``); ``GET /events/view/<id|uuid>``; ``POST /events/publish/<id>``;
- ``POST /objects/add/<event>``; ``POST /objectReferences/add``; ``POST /attributes/add/<event>``;
  ``POST /tags/attachTagToObject``; ``POST /tags/removeTagFromObject``.

The rules MISP applies, read in MISP 2.5.1 (github.com/MISP/MISP, commit bb0909a3), enforced
here so that a client MISP would refuse fails against the stand-in too:

- who sees an event (``app/Model/Event.php`` fetchEvent conditions): the owning or creating
  organisation, or anyone when the distribution is 1-3 (this single instance has no sharing
  groups, so distribution 4 is seen by its organisations only); others get 404 / nothing;
- who modifies it (``app/Controller/Component/ACLComponent.php`` canModifyEvent): a site admin,
  or a user with ``perm_modify_org`` of the creating organisation (``orgc_id``); others 403;
- local tags (``app/Controller/TagsController.php`` attachTagToObject) only by users of the
  host organisation (``MISP.host_org_id``), with view access, and they neither touch the
  attribute nor unpublish; a global tag needs modify access and unpublishes the event through
  ``MispAttribute::touch`` (``app/Model/MispAttribute.php``);
- every object or reference added unpublishes the event (``ObjectsController::add``,
  ``ObjectReferencesController::add``); a reference's target must be in the same event;
- an object is saved against its template (``app/Model/ObjectTemplate.php``
  checkTemplateConformity, MISP commit 0a19148): at least one ``requiredOneOf`` relation, and a
  relation the template does not mark ``multiple`` at most once; a relation the template does
  not define is not refused there. Templates known here (misp-objects commit 54538c6):
  ``image`` and ``cert-pl-phishing``; another template is refused as unknown;
- an attachment attribute's ``data`` (base64) is kept as its file (``MispAttribute::afterSave``)
  and sent back by restSearch ``withAttachments``;
- an attribute's uuid is unique on create (``MispAttribute.php`` validate ``uuid`` isUnique
  ``on => create``): "The UUID provided is not unique";
- restSearch pages with ``limit`` / ``page``; without them MISP builds the whole answer in PHP
  memory, which on a large instance ends in an error: past ``max_unpaged`` events the stand-in
  answers 500 as that instance would.

Every request needs ``Authorization: <key>``; MISP answers 403 otherwise. Writes are kept
in ``writes`` so tests assert on exactly what was sent.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid as uuidlib
from pathlib import Path

import pymisp
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

DESCRIBE_TYPES = json.loads((Path(pymisp.__file__).parent / "data" / "describeTypes.json").read_text())


MINE = "1"  # the organisation of the API key's user, also the host organisation
PARTNER = "2"  # another organisation (events pulled from a partner, or created by it)
NOT_UNIQUE = {"uuid": ["The UUID provided is not unique"]}

#: misp-objects (commit 54538c6) ``objects/<name>/definition.json``: uuid, version, description,
#: meta-category, requiredOneOf, and the relations marked ``multiple``.
TEMPLATES = {
    "image": {"uuid": "ca78ec03-3321-4ed3-9840-9bfd52b91d82", "version": "1", "meta-category": "file",
              "description": "Object describing an image file.",
              "requiredOneOf": ("attachment", "archive", "link"), "multiple": ("archive",)},
    "cert-pl-phishing": {
        "uuid": "4c37c9af-ca71-4365-bcfb-6393c22dd88e", "version": "1", "meta-category": "network",
        "description": "cert.pl phishing object template representing an url along with some metadata as "
                       "such phash, html-structure or partial-hash",
        "requiredOneOf": ("url", "phash-dct-base64", "html-structure", "truncated-hash-html-structure",
                          "favicon-mmh3"), "multiple": ()},
}


def template_refusal(body: dict) -> str | None:
    """Why MISP's checkTemplateConformity refuses the object, or None."""
    template = TEMPLATES.get(body.get("name"))
    if template is None:
        return f"unknown object template {body.get('name')!r}"
    relations = [a.get("object_relation") for a in body.get("Attribute", [])]
    if not set(relations) & set(template["requiredOneOf"]):
        return ("Could not save the object as it requires at least one of the following attributes to be "
                "set: " + ", ".join(template["requiredOneOf"]))
    if any(relations.count(r) > 1 for r in set(relations) - set(template["multiple"])):
        return ("Could not save the object as a unique relationship within the object was assigned to "
                "more than one attribute. This is only allowed if the multiple flag is set in the object "
                "template.")
    return None


class MISPStandIn:
    def __init__(
        self,
        key: str = "misp-test-key",
        site_admin: bool = False,
        max_unpaged: int = 50,
        host_org: str = MINE,
    ):
        self.key = key
        self.site_admin = site_admin
        self.host_org = host_org  # MISP.host_org_id: only its users may set local tags
        self.max_unpaged = max_unpaged
        self.events: list[dict] = []
        self.writes: list[tuple[str, dict]] = []
        self.searches: list[dict] = []
        self._ids = iter(range(1000, 10**6))
        self.app = self._build()

    # -- building events as MISP stores them ---------------------------------------------

    def next_id(self) -> str:
        return str(next(self._ids))

    def add_event(
        self,
        info: str,
        date: str = "2026-11-20",
        tags: tuple = (),
        distribution: int = 1,
        orgc: str = MINE,
        org: str | None = None,
        published: bool = False,
    ) -> dict:
        """An event as MISP stores it: ``orgc`` created it, ``org`` owns it on this instance
        (``org=MINE, orgc=PARTNER`` is an event pulled from a partner)."""
        event = {
            "id": self.next_id(),
            "uuid": str(uuidlib.uuid4()),
            "info": info,
            "date": date,
            "timestamp": str(int(time.time())),
            "published": published,
            "distribution": str(distribution),
            "sharing_group_id": "0",
            "analysis": "0",
            "threat_level_id": "4",
            "org_id": org or orgc,
            "orgc_id": orgc,
            "Attribute": [],
            "Object": [],
            "Tag": [self._tag(t) for t in tags],
            "Orgc": {"id": orgc, "name": f"ORG{orgc}", "uuid": str(uuidlib.uuid4())},
        }
        self.events.append(event)
        return event

    def add_attachment(self, event: dict, name: str, data: bytes, obj: dict | None = None, kind="attachment"):
        attribute = self._attribute(
            event, {"type": kind, "value": name, "category": "External analysis"}, obj
        )
        attribute["data"] = base64.b64encode(data).decode()
        (obj["Attribute"] if obj else event["Attribute"]).append(attribute)
        return attribute

    def add_attribute(self, event: dict, kind: str, value: str, obj: dict | None = None) -> dict:
        """Any other attribute (a ``url``, a ``domain``...), at event level or in ``obj``."""
        body = {"type": kind, "value": value, "category": "Network activity"}
        attribute = self._attribute(event, body, obj)
        (obj["Attribute"] if obj else event["Attribute"]).append(attribute)
        return attribute

    def add_image_object(self, event: dict) -> dict:
        obj = self._object(event, {"name": "image", "meta-category": "file", "comment": ""})
        event["Object"].append(obj)
        return obj

    def find_event(self, key: str) -> dict | None:
        return next((e for e in self.events if key in (e["id"], e["uuid"])), None)

    def visible(self, event: dict) -> bool:
        """Event.php fetchEvent: owned by the user's organisation, or shared (1-3)."""
        return self.site_admin or event["org_id"] == MINE or event["distribution"] in ("1", "2", "3")

    def may_modify(self, event: dict) -> bool:
        """ACLComponent::canModifyEvent: site admin, or perm_modify_org of the creator org."""
        return self.site_admin or event["orgc_id"] == MINE

    def unpublish(self, event: dict) -> None:
        """Event::unpublishEvent, called by every object, reference and global-tag write."""
        event["published"] = False
        event["timestamp"] = str(int(time.time()))

    def attribute_by_uuid(self, key: str) -> tuple[dict, dict] | None:
        for event in self.events:
            for attribute in event["Attribute"] + [a for o in event["Object"] for a in o["Attribute"]]:
                if attribute["uuid"] == key:
                    return event, attribute
        return None

    def uuid_taken(self, key: str) -> bool:
        return self.attribute_by_uuid(key) is not None

    def all_objects(self, event: dict) -> list[dict]:
        return event["Object"]

    # -- HTTP ---------------------------------------------------------------------------------

    def _build(self) -> Flask:
        app = Flask("misp-standin")

        @app.before_request
        def authenticate():
            if request.headers.get("Authorization") != self.key:
                return jsonify(
                    name="Authentication failed. Please make sure you pass the API key "
                    "of an API enabled user along in the Authorization header.",
                    message="Authentication failed.",
                    url=request.path,
                ), 403
            return None

        app.get("/servers/getVersion", endpoint="version")(
            lambda: jsonify(
                version="2.5.2",
                pymisp_recommended_version=pymisp.__version__,
                perm_sync=False,
                perm_sighting=True,
                perm_galaxy_editor=False,
                request_encoding=["gzip"],
                filter_sightings=True,
            )
        )
        app.get("/users/view/me")(self._me)
        app.get("/attributes/describeTypes.json", endpoint="describe_types")(
            lambda: jsonify(result=DESCRIBE_TYPES["result"])
        )
        app.post("/events/restSearch")(self._rest_search)
        app.get("/events/view/<key>")(self._view)
        app.post("/events/publish/<key>")(self._publish)
        app.post("/objects/add/<key>")(self._add_object)
        app.post("/attributes/add/<key>")(self._add_attribute)
        app.post("/objectReferences/add")(self._add_reference)
        app.post("/tags/attachTagToObject")(self._attach_tag)
        app.post("/tags/removeTagFromObject")(self._remove_tag)
        return app

    def _me(self):
        role = "admin" if self.site_admin else "Org Admin"
        return jsonify(
            User={"id": "1", "email": "admin@admin.test", "org_id": MINE, "role_id": "1"},
            Role={
                "id": "1",
                "name": role,
                "perm_add": True,
                "perm_modify": True,
                "perm_modify_org": True,
                "perm_tagger": True,
                "perm_site_admin": self.site_admin,
            },
            UserSetting={},
            Organisation={"id": MINE, "name": f"ORG{MINE}"},
        )

    def _rest_search(self):
        query = request.get_json(force=True)
        self.searches.append(query)
        found = [event for event in self.events if self.visible(event) and _selected(event, query)]
        limit, page = int(query.get("limit") or 0), int(query.get("page") or 1)
        if limit:
            found = found[(page - 1) * limit : page * limit]
        elif len(found) > self.max_unpaged:
            return _refused(f"Allowed memory size exhausted ({len(found)} events in one answer)", 500)
        with_data = bool(query.get("withAttachments"))
        return jsonify(response=[{"Event": self._export(event, with_data)} for event in found])

    def _view(self, key):
        event = self.find_event(key)
        if event is None or not self.visible(event):
            return _refused("Invalid event", 404)
        return jsonify(Event=self._export(event, with_data=False))

    def _publish(self, key):
        event = self._modifiable(key)
        if not isinstance(event, dict):
            return event
        self.writes.append(("publish", {"event": event["uuid"]}))
        event["published"] = True
        return jsonify(saved=True, success=True, name="Job queued", message="Job queued", id=event["id"])

    def _modifiable(self, key: str):
        """The event when the user may modify it, else MISP's refusal (404 unseen, 403 not owned)."""
        event = self.find_event(key)
        if event is None or not self.visible(event):
            return _refused("Invalid event.", 404)
        if not self.may_modify(event):
            return _refused("You don't have permission to do that.", 403)
        return event

    def _add_attribute(self, key):
        body = request.get_json(force=True)
        body = body.get("Attribute", body)
        self.writes.append(("attribute", body))
        event = self._modifiable(key)
        if not isinstance(event, dict):
            return event
        if body.get("uuid") and self.uuid_taken(body["uuid"]):
            return jsonify(
                saved=False,
                name="Could not add Attribute",
                message="Could not add Attribute",
                url=request.path,
                errors=NOT_UNIQUE,
            ), 403
        attribute = self._attribute(event, body, None)
        event["Attribute"].append(attribute)
        self.unpublish(event)
        return jsonify(Attribute=attribute)

    def _add_object(self, key):
        body = request.get_json(force=True)
        body = body.get("Object", body)
        self.writes.append(("object", body))
        event = self._modifiable(key)
        if not isinstance(event, dict):
            return event
        refusal = template_refusal(body)
        if refusal is not None:
            return jsonify(saved=False, name="Could not save object", errors={"Object": [refusal]}), 403
        if any(a.get("uuid") and self.uuid_taken(a["uuid"]) for a in body.get("Attribute", [])):
            return jsonify(saved=False, name="Could not save object", errors={"Attribute": [NOT_UNIQUE]}), 403
        obj = self._object(event, body)
        obj["Attribute"] = [self._attribute(event, a, obj) for a in body.get("Attribute", [])]
        event["Object"].append(obj)
        self.unpublish(event)
        return jsonify(Object=obj)

    def _add_reference(self):
        body = request.get_json(force=True)
        body = body.get("ObjectReference", body)
        self.writes.append(("reference", body))
        source = self._object_by_uuid(body["object_uuid"])
        if source is None or not self.visible(self.find_event(source["event_id"])):
            return _refused("Invalid object.", 404)
        event = self.find_event(source["event_id"])
        if not self.may_modify(event):
            return _refused("Invalid object.", 404)  # ObjectReferencesController::add
        targets = event["Attribute"] + event["Object"] + [a for o in event["Object"] for a in o["Attribute"]]
        target = next((t for t in targets if t["uuid"] == body["referenced_uuid"]), None)
        if target is None:
            return jsonify(
                name="Invalid target. Target has to be within the same event or extending it.",
                message="Invalid target.",
                url=request.path,
            ), 404
        reference = {
            "id": self.next_id(),
            "uuid": str(uuidlib.uuid4()),
            "timestamp": str(int(time.time())),
            "object_id": source["id"],
            "event_id": event["id"],
            "source_uuid": source["uuid"],
            "referenced_uuid": target["uuid"],
            "referenced_id": target["id"],
            "referenced_type": "1" if "Attribute" in target else "0",
            "relationship_type": body.get("relationship_type", ""),
            "comment": body.get("comment", ""),
            "deleted": False,
            "object_uuid": source["uuid"],
        }
        source["ObjectReference"].append(reference)
        self.unpublish(event)
        return jsonify(ObjectReference=reference)

    def _attach_tag(self):
        body = request.get_json(force=True)
        self.writes.append(("tag", body))
        local = bool(body.get("local"))
        if local and self.host_org != MINE:
            reasons = json.dumps({"0": "Local tags can only be added by users of the host organisation."})
            message = f"Failed to attach 1 tags. Reasons: {reasons}"
            return jsonify(
                saved=False,
                name="Could not attachTagToObject Tags",
                message=message,
                url=request.path,
                errors=message,
            ), 403
        found = self.attribute_by_uuid(body["uuid"])
        if found is None or not self.visible(found[0]):
            return _refused("Invalid Target.", 404)
        event, attribute = found
        if not local and not self.may_modify(event):
            return _refused("You don't have permission to do that.", 403)
        if body["tag"] not in {t["name"] for t in attribute["Tag"]}:
            attribute["Tag"].append(self._tag(body["tag"], local))
            if not local:  # MispAttribute::touch
                attribute["timestamp"] = str(int(time.time()))
                self.unpublish(event)
        scope = "Local" if local else "Global"
        return jsonify(
            saved=True,
            success=f"{scope} tag {body['tag']} successfully attached to Attribute({attribute['id']}).",
            check_publish=True,
        )

    def _remove_tag(self):
        body = request.get_json(force=True)
        self.writes.append(("untag", body))
        found = self.attribute_by_uuid(body["uuid"])
        if found is None or not self.visible(found[0]):
            return _refused("Invalid Target.", 404)
        event, attribute = found
        tag = next((t for t in attribute["Tag"] if t["name"] == body["tag"]), None)
        if tag is None:
            return _refused("Could not remove tag as it is not attached to the target Attribute", 404)
        if not tag["local"] and not self.may_modify(event):
            return _refused("You don't have permission to do that.", 403)
        attribute["Tag"].remove(tag)
        if not tag["local"]:
            self.unpublish(event)
        return jsonify(saved=True, success=f"Tag {body['tag']} successfully removed from Attribute.")

    # -- helpers --------------------------------------------------------------------------------

    def _object_by_uuid(self, key: str) -> dict | None:
        return next((o for e in self.events for o in e["Object"] if o["uuid"] == key), None)

    def _export(self, event: dict, with_data: bool) -> dict:
        def strip(attribute):
            return attribute if with_data else {k: v for k, v in attribute.items() if k != "data"}

        exported = dict(event)
        exported["Attribute"] = [strip(a) for a in event["Attribute"]]
        exported["Object"] = [{**o, "Attribute": [strip(a) for a in o["Attribute"]]} for o in event["Object"]]
        return json.loads(json.dumps(exported))

    def _tag(self, name: str, local: bool = False) -> dict:
        return {
            "id": str(abs(hash(name)) % 10000),
            "name": name,
            "colour": "#ffffff",
            "exportable": True,
            "local": local,
        }

    def _object(self, event: dict, body: dict) -> dict:
        return {
            "id": self.next_id(),
            "uuid": body.get("uuid") or str(uuidlib.uuid4()),
            "name": body["name"],
            "meta-category": body.get("meta-category", TEMPLATES[body["name"]]["meta-category"]),
            "description": TEMPLATES[body["name"]]["description"],
            "template_uuid": TEMPLATES[body["name"]]["uuid"],
            "template_version": TEMPLATES[body["name"]]["version"],
            "event_id": event["id"],
            "timestamp": str(int(time.time())),
            "distribution": str(body.get("distribution", "5")),
            "sharing_group_id": str(body.get("sharing_group_id", "0")),
            "comment": body.get("comment", ""),
            "deleted": False,
            "ObjectReference": [],
            "Attribute": [],
        }

    def _attribute(self, event: dict, body: dict, obj: dict | None) -> dict:
        return {
            "id": self.next_id(),
            "uuid": body.get("uuid") or str(uuidlib.uuid4()),
            "event_id": event["id"],
            "object_id": obj["id"] if obj else "0",
            "object_relation": body.get("object_relation"),
            "type": body["type"],
            "category": body.get("category", "Other"),
            "value": body["value"],
            "to_ids": bool(body.get("to_ids", False)),
            "distribution": str(body.get("distribution", "5")),
            "sharing_group_id": str(body.get("sharing_group_id", "0")),
            "comment": body.get("comment", ""),
            "deleted": False,
            "disable_correlation": bool(body.get("disable_correlation", False)),
            "timestamp": str(int(time.time())),
            "Tag": [self._tag(t["name"], bool(t.get("local"))) for t in body.get("Tag", [])],
            **self._file(body),
        }

    @staticmethod
    def _file(body: dict) -> dict:
        """An attachment's bytes, base64 in ``data``: MISP keeps them (``MispAttribute::afterSave``
        saves ``base64_decode($attribute['data'])`` for attachment types) and answers them with
        ``withAttachments``; an attachment without them is saved without a file."""
        if body.get("type") in ("attachment", "malware-sample") and body.get("data"):
            base64.b64decode(body["data"], validate=True)  # MISP stores what decodes; garbage fails here
            return {"data": body["data"]}
        return {}


def _selected(event: dict, query: dict) -> bool:
    """restSearch filters: eventid (id or uuid), tags, from (event date)."""
    if query.get("eventid") and str(query["eventid"]) not in (event["id"], event["uuid"]):
        return False
    if query.get("tags") and query["tags"] not in {t["name"] for t in event["Tag"]}:
        return False
    return not (query.get("from") and event["date"] < str(query["from"]))


def _refused(message: str, status: int):
    return jsonify(name=message, message=message, url=request.path), status


class running:
    """Serve a :class:`MISPStandIn` on a free loopback port in a thread: ``with running(s) as url``."""

    def __init__(self, standin: MISPStandIn):
        self.server = make_server("127.0.0.1", 0, standin.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_port}/"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()

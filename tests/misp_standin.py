"""A stand-in for a MISP instance at the HTTP boundary, for the write-back tests.

It implements the REST endpoints PyMISP calls during ``quaid misp-sync``, with request and
response bodies shaped as MISP 2.5 answers them (CakePHP JSON: ``{"Event": {...}}`` with
``Attribute`` / ``Object`` / ``Tag`` lists, ids as strings, ``ObjectReference`` lists on
objects, ``{"response": [...]}`` from restSearch):

- ``GET /servers/getVersion``, ``GET /users/view/me``, ``GET /attributes/describeTypes.json``
  (PyMISP's constructor);
- ``POST /events/restSearch`` (``eventid``, ``tags``, ``from``, ``withAttachments``);
- ``GET /events/view/<id|uuid>``;
- ``POST /objects/add/<event id|uuid>``; ``POST /objectReferences/add`` (the target must be
  in the same event, as MISP enforces); ``POST /tags/attachTagToObject``.

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


class MISPStandIn:
    def __init__(self, key: str = "misp-test-key"):
        self.key = key
        self.events: list[dict] = []
        self.writes: list[tuple[str, dict]] = []
        self._ids = iter(range(1000, 10**6))
        self.app = self._build()

    # -- building events as MISP stores them ---------------------------------------------

    def next_id(self) -> str:
        return str(next(self._ids))

    def add_event(self, info: str, date: str = "2026-11-20", tags: tuple = ()) -> dict:
        event = {
            "id": self.next_id(),
            "uuid": str(uuidlib.uuid4()),
            "info": info,
            "date": date,
            "timestamp": str(int(time.time())),
            "published": False,
            "distribution": "1",
            "analysis": "0",
            "threat_level_id": "4",
            "org_id": "1",
            "orgc_id": "1",
            "Attribute": [],
            "Object": [],
            "Tag": [self._tag(t) for t in tags],
            "Orgc": {"id": "1", "name": "ORGNAME", "uuid": str(uuidlib.uuid4())},
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

    def add_image_object(self, event: dict) -> dict:
        obj = self._object(event, {"name": "image", "meta-category": "file", "comment": ""})
        event["Object"].append(obj)
        return obj

    def find_event(self, key: str) -> dict | None:
        return next((e for e in self.events if key in (e["id"], e["uuid"])), None)

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
        app.post("/objects/add/<key>")(self._add_object)
        app.post("/objectReferences/add")(self._add_reference)
        app.post("/tags/attachTagToObject")(self._attach_tag)
        return app

    def _me(self):
        return jsonify(
            User={"id": "1", "email": "admin@admin.test", "org_id": "1", "role_id": "1"},
            Role={"id": "1", "name": "admin", "perm_add": True, "perm_tagger": True},
            UserSetting={},
            Organisation={"id": "1", "name": "ORGNAME"},
        )

    def _rest_search(self):
        query = request.get_json(force=True)
        found = []
        for event in self.events:
            if query.get("eventid") and str(query["eventid"]) not in (event["id"], event["uuid"]):
                continue
            if query.get("tags") and query["tags"] not in {t["name"] for t in event["Tag"]}:
                continue
            if query.get("from") and event["date"] < str(query["from"]):
                continue
            found.append({"Event": self._export(event, with_data=bool(query.get("withAttachments")))})
        return jsonify(response=found)

    def _view(self, key):
        event = self.find_event(key)
        if event is None:
            return jsonify(name="Invalid event", message="Invalid event", url=request.path), 404
        return jsonify(Event=self._export(event, with_data=False))

    def _add_object(self, key):
        event = self.find_event(key)
        if event is None:
            return jsonify(name="Invalid event.", message="Invalid event.", url=request.path), 404
        body = request.get_json(force=True)
        body = body.get("Object", body)
        self.writes.append(("object", body))
        if body.get("name") != "image" or not any(
            a.get("object_relation") in ("attachment", "archive", "link") for a in body.get("Attribute", [])
        ):
            return jsonify(
                saved=False, name="Could not save object", errors={"Object": ["requiredOneOf"]}
            ), 403
        obj = self._object(event, body)
        obj["Attribute"] = [self._attribute(event, a, obj) for a in body.get("Attribute", [])]
        event["Object"].append(obj)
        return jsonify(Object=obj)

    def _add_reference(self):
        body = request.get_json(force=True)
        body = body.get("ObjectReference", body)
        self.writes.append(("reference", body))
        source = self._object_by_uuid(body["object_uuid"])
        if source is None:
            return jsonify(name="Invalid object.", message="Invalid object.", url=request.path), 404
        event = self.find_event(source["event_id"])
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
        return jsonify(ObjectReference=reference)

    def _attach_tag(self):
        body = request.get_json(force=True)
        self.writes.append(("tag", body))
        for event in self.events:
            for attribute in event["Attribute"] + [a for o in event["Object"] for a in o["Attribute"]]:
                if attribute["uuid"] == body["uuid"]:
                    if body["tag"] not in {t["name"] for t in attribute["Tag"]}:
                        attribute["Tag"].append(self._tag(body["tag"]))
                    return jsonify(
                        saved=True,
                        success=f"Global tag {body['tag']} successfully attached to "
                        f"Attribute({attribute['id']}).",
                        check_publish=True,
                    )
        return jsonify(name="Invalid Target.", message="Invalid Target.", url=request.path), 404

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

    def _tag(self, name: str) -> dict:
        return {
            "id": str(abs(hash(name)) % 10000),
            "name": name,
            "colour": "#ffffff",
            "exportable": True,
            "local": False,
        }

    def _object(self, event: dict, body: dict) -> dict:
        return {
            "id": self.next_id(),
            "uuid": body.get("uuid") or str(uuidlib.uuid4()),
            "name": body["name"],
            "meta-category": body.get("meta-category", "file"),
            "description": "Object describing an image file.",
            "template_uuid": "ca78ec03-3321-4ed3-9840-9bfd52b91d82",
            "template_version": "1",
            "event_id": event["id"],
            "timestamp": str(int(time.time())),
            "distribution": "5",
            "sharing_group_id": "0",
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
            "to_ids": False,
            "distribution": "5",
            "sharing_group_id": "0",
            "comment": body.get("comment", ""),
            "deleted": False,
            "disable_correlation": bool(body.get("disable_correlation", False)),
            "timestamp": str(int(time.time())),
            "Tag": [self._tag(t["name"]) for t in body.get("Tag", [])],
        }


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

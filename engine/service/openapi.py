"""The OpenAPI 3 document of the service, served at ``/api/v1/openapi.json``.

Written by hand (no generator dependency) from small helpers; ``tests/test_api.py``
checks that every route the app serves is described here and vice versa, so
the document cannot silently fall behind the code.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from engine import __version__
from engine.service.auth import Access, requires

blueprint = Blueprint("openapi", __name__, url_prefix="/api/v1")

_DECISION = {"type": "string", "enum": ["accepted", "to-review", "rejected"]}
_REASON = {"type": "string", "enum": ["same-template"],
           "description": "why the pair is not accepted: same template (site, kit), other content"}
_ID = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256 hex of the picture bytes"}

SCHEMAS: dict = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string", "description": "one-line reason"}}},
    "AlgorithmResult": {"type": "object", "properties": {
        "distance": {"type": "number", "minimum": 0, "maximum": 1},
        "decision": {"type": "string", "enum": ["yes", "maybe", "no"]},
        "reason": _REASON}},
    "Match": {"type": "object", "properties": {
        "id": _ID, "name": {"type": "string"}, "distance": {"type": "number"},
        "decision": _DECISION, "cluster": {"type": "string", "nullable": True},
        "tags": {"type": "array", "items": {"type": "string"}},
        "reason": _REASON,
        "algorithms": {"type": "object",
                       "additionalProperties": {"$ref": "#/components/schemas/AlgorithmResult"}}}},
    "SearchResult": {"type": "object", "required": ["decision", "matches"], "properties": {
        "decision": {**_DECISION, "description": "best decision among matches; rejected when none"},
        "matches": {"type": "array", "items": {"$ref": "#/components/schemas/Match"},
                    "description": "best first; rejected candidates omitted"}}},
    "HashRecord": {"type": "object", "required": ["file", "id", "hashes"], "properties": {
        "file": {"type": "string"}, "id": _ID,
        "hashes": {"type": "object", "properties": {
            **{name: {"type": "string", "pattern": "^[0-9a-f]{16}$", "description": f"ImageHash {name}"}
               for name in ("ahash", "phash", "dhash", "whash")},
            "pdq": {"type": "string", "pattern": "^[0-9a-f]{64}$", "nullable": True,
                    "description": "as ThreatExchange's PDQ hasher writes it (hash bit 0 first); "
                                   "null for pictures of more than 8 bits a channel, which it refuses"},
            "pdq_quality": {"type": "integer", "minimum": 0, "maximum": 100, "nullable": True},
            "goldberg": {"type": "array", "items": {"type": "integer", "minimum": -2, "maximum": 2},
                         "minItems": 648, "maxItems": 648, "description": "image-match's signature"},
            "forbild": {"type": "string", "pattern": "^[0-9A-F]{64}$",
                        "description": "256 bits row-major, most significant bit first"},
            "tlsh": {"type": "string", "nullable": True, "description": "T1 digest; null when TLSH refuses"},
        }}}},
    "AddResult": {"type": "object", "required": ["id", "status"], "properties": {
        "id": _ID, "name": {"type": "string"}, "status": {"type": "string", "enum": ["added", "duplicate"]},
        "cluster": {"type": "string", "nullable": True}}},
    "Picture": {"type": "object", "description": "the stored record", "properties": {
        "id": _ID, "name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
        "metadata": {"type": "object"}, "added": {"type": "number"}, "size": {"type": "integer"},
        "width": {"type": "integer"}, "height": {"type": "integer"}, "format": {"type": "string"},
        "cluster": {"type": "string", "nullable": True}}, "additionalProperties": True},
    "Cluster": {"type": "object", "additionalProperties": True, "properties": {
        "id": {"type": "string"}, "representative": _ID, "size": {"type": "integer"},
        "members": {"type": "array", "items": {"type": "string"}}}},
    "Job": {"type": "object", "required": ["job", "status"], "properties": {
        "job": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "action": {"type": "string", "enum": ["add", "search"]},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
        "total": {"type": "integer"}, "done": {"type": "integer"}, "attempts": {"type": "integer"},
        "created": {"type": "number"}, "updated": {"type": "number"}, "error": {"type": "string"},
        "results": {"type": "array", "description": "per file, in submission order, once done: the add or "
                    "search result with `file`, or {file, status: error, error}",
                    "items": {"type": "object"}}}},
    "ReviewItem": {"type": "object", "properties": {
        "item": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "query": _ID,
        "query_name": {"type": "string"},
        "match": _ID, "match_name": {"type": "string"}, "distance": {"type": "number"},
        "algorithms": {"type": "object"}, "recorded": {"type": "number"},
        "verdict": {"type": "string", "enum": ["accepted", "rejected"], "nullable": True},
        "reviewed": {"type": "number"}}},
    "Label": {"type": "object", "properties": {
        "query": _ID, "match": _ID, "same": {"type": "boolean"}, "verdict": {"type": "string"},
        "distance": {"type": "number"}, "algorithms": {"type": "object"}}},
}

_ERRORS = {
    "400": "bad input (parameter, JSON, missing file part)", "401": "missing or unknown API key",
    "403": "the API key is read-only; or a request from another web origin; or a change sent without "
           "the X-Quaid-Request header or a JSON body",
    "404": "unknown id", "413": "upload too large, or more form fields than the form-field limit",
    "415": "not a picture, or not multipart/form-data",
    "421": "host name not served here (loopback names and the public_hosts setting are)",
    "429": "too many unfinished jobs for this key or in all; retry after Retry-After seconds",
    "503": "store unavailable, retry later",
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict, *, errors: str = "", access: str = "read", body: dict | None = None,
        params: list | None = None, tag: str = "pictures") -> dict:
    responses = dict(ok)
    for code in ("401", "403", "421", "503") + tuple(errors.split()):
        responses[code] = {"$ref": f"#/components/responses/E{code}"}
    op = {"summary": summary, "tags": [tag], "responses": responses,
          "description": f"Needs a {access} key when keys are configured."}
    if body:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    return op


def _multipart(properties: dict, required: list[str]) -> dict:
    return {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "properties": properties, "required": required},
        "encoding": {"tags": {"style": "form", "explode": True}}}}}


def _path_param(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_FILE = {"type": "string", "format": "binary"}
_TAGS = {"type": "array", "items": {"type": "string"}, "description": "repeat the field for several tags"}
_META = {"type": "string", "description": "a JSON object, stored as is"}
_TOP = {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}
_PID = _path_param("id", _ID)
_ALL = {"type": "boolean", "default": False, "description": "also list rejected candidates"}


def document() -> dict:
    """The whole OpenAPI 3.0.3 document."""
    paths = {
        "/status/live": {"get": {**_op("Process alive", {"200": _json({"type": "object"})}, tag="status"),
                                 "security": [], "description": "No key needed."}},
        "/status": {"get": {**_op("Ready: store reachable, engine loaded; counts",
                                  {"200": _json({"type": "object"})}, tag="status"),
                            "security": [], "description": "No key needed; 503 when the store is down."}},
        "/api/v1/openapi.json": {"get": {**_op("This document", {"200": _json({"type": "object"})},
                                               tag="status"), "security": []}},
        "/api/v1/pictures": {"post": _op(
            "Add a picture (idempotent: the id is the SHA-256 of the bytes)",
            {"201": _json(_ref("AddResult"), "added"), "200": _json(_ref("AddResult"), "already stored")},
            errors="400 413 415", access="write",
            body=_multipart({"file": _FILE, "name": {"type": "string"}, "tags": _TAGS, "metadata": _META},
                            ["file"]))},
        "/api/v1/pictures/{id}": {
            "get": _op("A stored picture's record", {"200": _json(_ref("Picture"))}, errors="400 404",
                       params=[_PID]),
            "patch": _op("Replace tags and/or metadata", {"200": _json(_ref("Picture"))}, errors="400 404",
                         access="write", params=[_PID], body={"required": True, "content": {
                             "application/json": {"schema": {"type": "object", "properties": {
                                 "tags": {"type": "array", "items": {"type": "string"}},
                                 "metadata": {"type": "object"}}}}}}),
            "delete": _op("Delete a picture (and its features, index entry, cluster membership)",
                          {"200": _json({"type": "object"})}, errors="400 404", access="write",
                          params=[_PID]),
        },
        "/api/v1/pictures/{id}/image": {"get": _op(
            "The stored bytes or thumbnail (per the server's `keep` setting)",
            {"200": {"description": "picture", "content": {"image/*": {"schema": _FILE}}}},
            errors="400 404", params=[_PID])},
        "/api/v1/pictures/{id}/matches": {"get": _op(
            "A stored picture's accepted and to-review matches, best first, with every algorithm's vote",
            {"200": _json({"type": "object", "properties": {
                "id": _ID, "matches": {"type": "array", "items": _ref("Match")}}})},
            errors="400 404", params=[_PID, _query("top", _TOP)])},
        "/api/v1/search": {"post": _op(
            "Search one picture synchronously (answers a screenshot in well under a second)",
            {"200": _json(_ref("SearchResult"))}, errors="400 413 415", tag="search",
            body=_multipart({"file": _FILE, "top": _TOP, "all": _ALL}, ["file"]),
            params=[_query("top", _TOP), _query("all", _ALL)])},
        "/api/v1/hash": {"post": _op(
            "The picture's hashes as partners' tools compute and write them (ImageHash, PDQ, "
            "image-match, ForBild, pixel TLSH); stores nothing",
            {"200": _json(_ref("HashRecord"))}, errors="400 413 415", tag="search",
            body=_multipart({"file": _FILE}, ["file"]))},
        "/api/v1/jobs": {"post": _op(
            "Submit a batch job: several files, action add (write key) or search",
            {"202": _json({"type": "object", "properties": {"job": {"type": "string"},
                                                            "status": {"type": "string"},
                                                            "total": {"type": "integer"}}}, "queued")},
            errors="400 413 415 429", tag="jobs",
            body=_multipart({"file": {"type": "array", "items": _FILE, "description": "repeat for each file"},
                             "action": {"type": "string", "enum": ["add", "search"]}, "top": _TOP,
                             "tags": _TAGS, "metadata": _META}, ["file", "action"]))},
        "/api/v1/jobs/{job}": {"get": _op(
            "A job's state; per-file results once done", {"200": _json(_ref("Job"))}, errors="404",
            tag="jobs", params=[_path_param("job", {"type": "string"})])},
        "/api/v1/clusters": {"get": _op(
            "Every cluster of near-identical pictures", {"200": _json({"type": "object", "properties": {
                "clusters": {"type": "array", "items": _ref("Cluster")}}})}, tag="clusters")},
        "/api/v1/clusters/{id}": {"get": _op(
            "One cluster with its members", {"200": _json(_ref("Cluster"))}, errors="400 404",
            tag="clusters", params=[_path_param("id", {"type": "string"})])},
        "/api/v1/export": {"get": _op(
            "Export pictures and clusters; `graph`: nodes, edges, clusters for a graph viewer",
            {"200": _json({"type": "object"})}, errors="400", tag="clusters",
            params=[_query("format", {"type": "string", "enum": ["json", "graph"], "default": "json"})])},
        "/api/v1/review": {"get": _op(
            "Review queue: pending items oldest first, or reviewed items newest first",
            {"200": _json({"type": "object", "properties": {
                "status": {"type": "string"}, "total": {"type": "integer"},
                "items": {"type": "array", "items": _ref("ReviewItem")}}})}, errors="400", tag="review",
            params=[_query("status", {"type": "string", "enum": ["pending", "done"], "default": "pending"}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
                    _query("offset", {"type": "integer", "minimum": 0, "default": 0})])},
        "/api/v1/review/labels": {"get": _op(
            "Every judged pair as a labelled list (input of `quaid calibrate`)",
            {"200": _json({"type": "object", "properties": {
                "labels": {"type": "array", "items": _ref("Label")}}})}, tag="review")},
        "/api/v1/review/{item}": {
            "get": _op("One review item", {"200": _json(_ref("ReviewItem"))}, errors="404", tag="review",
                       params=[_path_param("item", {"type": "string"})]),
            "post": _op("Give the analyst's verdict", {"200": _json(_ref("ReviewItem"))}, errors="400 404",
                        access="write", tag="review", params=[_path_param("item", {"type": "string"})],
                        body={"required": True, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["verdict"], "properties": {
                                "verdict": {"type": "string", "enum": ["accepted", "rejected"]}}}}}}),
        },
        "/api/v1/review/{item}/image": {"get": _op(
            "Thumbnail of the searched picture (JPEG)",
            {"200": {"description": "JPEG", "content": {"image/jpeg": {"schema": _FILE}}}}, errors="404",
            tag="review", params=[_path_param("item", {"type": "string"})])},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "quaid", "version": __version__,
                 "description": "Picture correlation for threat intelligence: accepted / to-review / "
                                "rejected answers for a new picture against known ones. Every change "
                                "(POST, PATCH, DELETE) needs the header 'X-Quaid-Request: 1' or a JSON "
                                "body: a web page cannot send either to another site."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "read or read-write API key"}},
            "responses": {f"E{code}": _json(_ref("Error"), text) for code, text in _ERRORS.items()},
        },
    }


@blueprint.get("/openapi.json")
@requires(Access.NONE)
def openapi_json() -> Response:
    return jsonify(document())

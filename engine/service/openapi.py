"""The OpenAPI 3.1 document of the service, served at ``/api/v1/openapi.json``.

Its schemas are generated from the answer models the views send
(:mod:`engine.service.models`), so an answer and its description cannot differ;
the paths, parameters and request bodies are listed here. The tests check that every
route the app serves is described and nothing else, and validate real answers, errors
included, against this document.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from engine import __version__
from engine.service import cluster_models, models
from engine.service.auth import Access, requires
from engine.service.guard import HEADER
from engine.service.schema import json_schema, models_in

blueprint = Blueprint("openapi", __name__, url_prefix="/api/v1")

_ID = {"type": "string", "pattern": models.PICTURE_ID, "description": "SHA-256 hex of the picture bytes"}
_ITEM = {"type": "string", "pattern": models.ITEM_ID}

ANSWERS = (models.Error, models.Live, models.Ready, models.Unavailable, models.AddAnswer, models.Picture,
           models.Deleted, models.PictureMatches, models.SearchAnswer, models.JobQueued, models.Job,
           cluster_models.Clusters, cluster_models.ClusterDetail, cluster_models.Export, cluster_models.Graph,
           cluster_models.GraphPage, models.ReviewPage, models.ReviewItem, models.Labels, models.HashRecord,
           models.HashSearchAnswer, models.HashImportAnswer, models.MatchEventPage, models.Brand,
           models.Brands, models.BrandDeleted, models.NoiseList)


def schemas() -> dict:
    """Every answer model and the models they contain, generated from their classes."""
    found = [m for answer in ANSWERS for m in models_in(answer)]
    return {m.__name__: json_schema(m) for m in dict.fromkeys(found)}


_ERRORS = {
    "400": "bad input (parameter, JSON, missing file part)", "401": "missing or unknown API key",
    "403": "the API key is read-only; or a request from another web origin; or a change sent without "
           "the X-Quaid-Request header or a JSON body",
    "404": "unknown id", "413": "upload too large, or more form fields than the form-field limit",
    "415": "not a picture, or not multipart/form-data",
    "422": "the picture has no stored feature to draw (a partner's hashes only)",
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
        responses.setdefault(code, {"$ref": f"#/components/responses/E{code}"})
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
_OFFSET = {"type": "integer", "minimum": 0, "default": 0}
_ALL = {"type": "boolean", "default": False, "description": "also list rejected candidates"}
_HASHES = {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1,
           "description": "{name: value}, names: pdq, phash, dhash, ahash, whash, phash_dct_base64"}


_WRITE_HEADER = {"name": HEADER, "in": "header", "required": True, "schema": {"type": "string"},
                 "description": "required on every change: a web page cannot send it to another site"}
_JSON_WRITE_HEADER = {**_WRITE_HEADER, "required": False,
                      "description": "not needed with a JSON body (a web page cannot send one cross-site)"}
_ITEM_PARAM = _path_param("item", _ITEM)
_PNG = {"description": "PNG: the first picture, and the second aligned into its frame; red boxes: "
                       "rewritten content, blue: blocks a copy adds, orange: weak differences. Headers "
                       "X-Quaid-Aligned, X-Quaid-Differing-Share, X-Quaid-Rewritten-Regions, "
                       "X-Quaid-Added-Blocks say the same in numbers",
        "content": {"image/png": {"schema": _FILE}}}
_REFERENCE_BRAND = {"type": "string", "description": "the brand this picture is a baseline of (kept in "
                                                    "its metadata)"}
_REFERENCE_DOMAIN = {"type": "string", "description": "host name or URL it was captured on (kept in its "
                                                     "metadata)"}
_DOMAINS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 50}],
            "description": "host name or URL the hashed page was seen on, or several: matches against brand "
                           "baselines then say legitimate (every one is the brand's) or phishing-suspected"}
_BRAND_PARAM = _path_param("name", {"type": "string", "minLength": 1, "maxLength": 100})
_DOMAIN = {"type": "string", "description": "host name or URL the query was seen on (repeat for several, "
                                            "e.g. a redirect chain): matches against brand baselines then "
                                            "say legitimate (every one is the brand's) or phishing-suspected"}
_VERDICT = {"type": "string", "enum": ["accepted", "rejected", "noise"],
            "description": "noise: the pair's stored pictures go to the noise bank"}


def _model(model: type, description: str = "OK") -> dict:
    return _json(_ref(model.__name__), description)


def _free_object(description: str) -> dict:
    return _json({"type": "object", "description": description})


def _json_body(properties: dict, required: list[str]) -> dict:
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": properties, "required": required, "additionalProperties": False}}}}


def paths() -> dict:
    """Every route the service answers, with its parameters, bodies and answers."""
    return {
        "/status/live": {"get": {**_op("Process alive", {"200": _model(models.Live)}, tag="status"),
                                 "security": [], "description": "No key needed."}},
        "/status": {"get": {**_op("Ready: store reachable, engine loaded; counts",
                                  {"200": _model(models.Ready),
                                   "503": _model(models.Unavailable, "store unavailable")}, tag="status"),
                            "security": [], "description": "No key needed; 503 when the store is down."}},
        "/api/v1/openapi.json": {"get": {**_op("This document", {"200": _free_object("OpenAPI 3.1")},
                                               tag="status"), "security": []}},
        "/api/v1/pictures": {"post": _op(
            "Add a picture (idempotent: the id is the SHA-256 of the bytes)",
            {"201": _model(models.AddAnswer, "added"), "200": _model(models.AddAnswer, "already stored")},
            errors="400 413 415", access="write", params=[_WRITE_HEADER],
            body=_multipart({"file": _FILE, "name": {"type": "string"}, "tags": _TAGS, "metadata": _META,
                             "brand": _REFERENCE_BRAND, "domain": _REFERENCE_DOMAIN},
                            ["file"]))},
        "/api/v1/pictures/{id}": {
            "get": _op("A stored picture's record", {"200": _model(models.Picture)}, errors="400 404",
                       params=[_PID]),
            "patch": _op("Replace tags and/or metadata", {"200": _model(models.Picture)},
                         errors="400 404 413 415", access="write", params=[_PID, _JSON_WRITE_HEADER],
                         body=_json_body({"tags": {"type": "array", "items": {"type": "string"}},
                                          "metadata": {"type": "object"}}, [])),
            "delete": _op("Delete a picture (and its features, index entry, cluster membership)",
                          {"200": _model(models.Deleted)}, errors="400 404", access="write",
                          params=[_PID, _WRITE_HEADER]),
        },
        "/api/v1/pictures/{id}/image": {"get": _op(
            "The stored bytes or thumbnail (per the server's `keep` setting)",
            {"200": {"description": "picture", "content": {"image/*": {"schema": _FILE}}}},
            errors="400 404", params=[_PID])},
        "/api/v1/pictures/{id}/matches": {"get": _op(
            "A stored picture's accepted and to-review matches, best first, with every algorithm's vote",
            {"200": _model(models.PictureMatches)}, errors="400 404", params=[_PID, _query("top", _TOP)])},
        "/api/v1/pictures/{id}/noise": {
            "post": _op("Put the picture in the noise bank: never reported as a match; a picture matching "
                        "it is answered as noise", {"200": _model(models.Picture)}, errors="400 404",
                        access="write", tag="noise", params=[_PID, _WRITE_HEADER]),
            "delete": _op("Take the picture out of the noise bank", {"200": _model(models.Picture)},
                          errors="400 404", access="write", tag="noise", params=[_PID, _WRITE_HEADER]),
        },
        "/api/v1/noise": {"get": _op(
            "The noise bank: its pictures, most recently marked first", {"200": _model(models.NoiseList)},
            errors="400", tag="noise",
            params=[_query("offset", _OFFSET), _query("limit", {"type": "integer", "minimum": 1,
                                                                "maximum": 1000, "default": 100})])},
        "/api/v1/search": {"post": _op(
            "Search one picture synchronously (answers a screenshot in well under a second)",
            {"200": _model(models.SearchAnswer)}, errors="400 413 415", tag="search",
            body=_multipart({"file": _FILE, "top": _TOP, "all": _ALL, "domain": _DOMAIN}, ["file"]),
            params=[_query("top", _TOP), _query("all", _ALL), _query("domain", _DOMAIN), _WRITE_HEADER])},
        "/api/v1/hash": {"post": _op(
            "The picture's hashes as partners' tools compute and write them (ImageHash, PDQ, "
            "image-match, ForBild, pixel TLSH); stores nothing",
            {"200": _model(models.HashRecord)}, errors="400 413 415", tag="search",
            body=_multipart({"file": _FILE}, ["file"]), params=[_WRITE_HEADER])},
        "/api/v1/search/hashes": {"post": _op(
            "Search by a partner's hashes instead of a picture (pdq, phash, dhash, ahash, whash, "
            "phash_dct_base64 as `quaid hash` writes them); at best to-review, never accepted",
            {"200": _model(models.HashSearchAnswer)}, errors="400 413 415", tag="search",
            params=[_JSON_WRITE_HEADER],
            body=_json_body({"hashes": _HASHES, "top": _TOP, "all": _ALL, "domain": _DOMAINS}, ["hashes"]))},
        "/api/v1/hashes": {"post": _op(
            "Import a partner's hash list as hash-only references (no picture); a bad line fails alone",
            {"200": _model(models.HashImportAnswer)}, errors="400 413 415", access="write",
            params=[_JSON_WRITE_HEADER],
            body=_json_body({"format": {"type": "string", "enum": ["pdq-csv", "lines"], "description":
                                        "pdq-csv: hash,quality,filename a line (ThreatExchange's PDQ "
                                        "hasher); lines: 'TYPE VALUE' a line (python-threatexchange)"},
                             "list": {"type": "string", "description": "the list's text"},
                             "hash_name": {"type": "string", "description": "type of bare values (lines)"},
                             "tags": {"type": "array", "items": {"type": "string"}}},
                            ["format", "list"]))},
        "/api/v1/jobs": {"post": _op(
            "Submit a batch job: several files, action add (write key) or search",
            {"202": _model(models.JobQueued, "queued")}, errors="400 413 415 429", tag="jobs",
            params=[_WRITE_HEADER],
            body=_multipart({"file": {"type": "array", "items": _FILE, "description": "repeat for each file"},
                             "action": {"type": "string", "enum": ["add", "search"]}, "top": _TOP,
                             "tags": _TAGS, "metadata": _META, "brand": _REFERENCE_BRAND,
                             "domain": {"type": "string", "description": "add: as for one picture; search: "
                                                                         "as for one search (repeatable)"}},
                            ["file", "action"]))},
        "/api/v1/jobs/{job}": {"get": _op(
            "A job's state; per-file results once done", {"200": _model(models.Job)}, errors="404",
            tag="jobs", params=[_path_param("job", {"type": "string"})])},
        "/api/v1/clusters": {"get": _op(
            "Every cluster of near-identical pictures", {"200": _model(cluster_models.Clusters)},
            tag="clusters")},
        "/api/v1/clusters/{id}": {"get": _op(
            "One cluster with its members", {"200": _model(cluster_models.ClusterDetail)}, errors="400 404",
            tag="clusters", params=[_path_param("id", {"type": "integer", "minimum": 0}),
                                    _query("offset", _OFFSET, "members to skip, oldest first"),
                                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000,
                                                     "default": 1000}, "members to send at most")])},
        "/api/v1/graph": {"get": _op(
            "One page of the graph: whole clusters, largest first, up to `limit` pictures, with the "
            "scored matches between them (the web UI's graph view)",
            {"200": _model(cluster_models.GraphPage)}, errors="400", tag="clusters",
            params=[_query("offset", _OFFSET, "rank of the first cluster (0 = the largest); a page's `next`"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 300},
                           "pictures to draw at most")])},
        "/api/v1/export": {"get": _op(
            "Export pictures and clusters; `graph`: nodes, edges, clusters for a graph viewer",
            {"200": _json({"oneOf": [_ref("Export"), _ref("Graph")]})}, errors="400", tag="clusters",
            params=[_query("format", {"type": "string", "enum": ["json", "graph"], "default": "json"})])},
        "/api/v1/review": {"get": _op(
            "Review queue: pending items oldest first, or reviewed items newest first",
            {"200": _model(models.ReviewPage)}, errors="400", tag="review",
            params=[_query("status", {"type": "string", "enum": ["pending", "done"], "default": "pending"}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
                    _query("offset", {"type": "integer", "minimum": 0, "default": 0})])},
        "/api/v1/review/labels": {"get": _op(
            "Every judged pair as a labelled list (input of `quaid calibrate`)",
            {"200": _model(models.Labels)}, tag="review")},
        "/api/v1/review/{item}": {
            "get": _op("One review item", {"200": _model(models.ReviewItem)}, errors="404", tag="review",
                       params=[_ITEM_PARAM]),
            "post": _op("Give the analyst's verdict", {"200": _model(models.ReviewItem)},
                        errors="400 404 413",
                        access="write", tag="review", params=[_ITEM_PARAM, _JSON_WRITE_HEADER],
                        body=_json_body({"verdict": _VERDICT}, ["verdict"])),
        },
        "/api/v1/review/{item}/image": {"get": _op(
            "Thumbnail of the searched picture (JPEG)",
            {"200": {"description": "JPEG", "content": {"image/jpeg": {"schema": _FILE}}}}, errors="404",
            tag="review", params=[_ITEM_PARAM])},
        "/api/v1/review/{item}/compare": {"get": _op(
            "The item's stored picture aligned onto its searched picture, differing regions marked (PNG)",
            {"200": _PNG}, errors="404 422", tag="review", params=[_ITEM_PARAM])},
        "/api/v1/events": {"get": _op(
            "Match events after a position, oldest first: each a picture added and the earlier pictures it "
            "matched (retroactive matches, for connectors to follow)",
            {"200": _model(models.MatchEventPage)}, errors="400", tag="events",
            params=[_query("after", {"type": "string", "pattern": r"^[0-9]+(-[0-9]+)?$", "default": "0-0"},
                           "the `next` of the previous read; 0 for the beginning"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})])},
        "/api/v1/compare": {
            "get": _op("Stored picture b aligned onto stored picture a, differing regions marked (PNG)",
                       {"200": _PNG}, errors="400 404 422", tag="search",
                       params=[{**_query("a", _ID), "required": True},
                               {**_query("b", _ID), "required": True}]),
            "post": _op("Stored picture b aligned onto the uploaded picture, differing regions marked (PNG); "
                        "stores nothing", {"200": _PNG}, errors="400 404 413 415 422", tag="search",
                        params=[_query("b", _ID, "or as a form field"), _WRITE_HEADER],
                        body=_multipart({"file": _FILE, "b": _ID}, ["file"])),
        },
        "/api/v1/brands": {"get": _op("Every brand with its own domains", {"200": _model(models.Brands)},
                                      tag="brands")},
        "/api/v1/brands/{name}": {
            "get": _op("One brand's own domains", {"200": _model(models.Brand)}, errors="404", tag="brands",
                       params=[_BRAND_PARAM]),
            "put": _op("Replace a brand's own domains (URLs are reduced to registrable domains)",
                       {"200": _model(models.Brand)}, errors="400 413 415", access="write", tag="brands",
                       params=[_BRAND_PARAM, _JSON_WRITE_HEADER],
                       body=_json_body({"domains": {"type": "array", "items": {"type": "string"},
                                                    "minItems": 1, "maxItems": 200}}, ["domains"])),
            "delete": _op("Remove a brand's configured domains (its baselines stay stored)",
                          {"200": _model(models.BrandDeleted)}, errors="400 404", access="write",
                          tag="brands", params=[_BRAND_PARAM, _WRITE_HEADER]),
        },
    }


# operationId of each operation: the method names a client generated from the document gets
OPERATION_IDS = {
    ("/status/live", "get"): "live", ("/status", "get"): "ready", ("/api/v1/openapi.json", "get"): "openapi",
    ("/api/v1/pictures", "post"): "add_picture", ("/api/v1/pictures/{id}", "get"): "get_picture",
    ("/api/v1/pictures/{id}", "patch"): "update_picture",
    ("/api/v1/pictures/{id}", "delete"): "delete_picture",
    ("/api/v1/pictures/{id}/image", "get"): "picture_image",
    ("/api/v1/pictures/{id}/matches", "get"): "picture_matches", ("/api/v1/search", "post"): "search",
    ("/api/v1/pictures/{id}/noise", "post"): "mark_noise",
    ("/api/v1/pictures/{id}/noise", "delete"): "unmark_noise",
    ("/api/v1/noise", "get"): "list_noise",
    ("/api/v1/hash", "post"): "hash_picture", ("/api/v1/search/hashes", "post"): "search_hashes",
    ("/api/v1/hashes", "post"): "import_hashes",
    ("/api/v1/jobs", "post"): "submit_job", ("/api/v1/jobs/{job}", "get"): "get_job",
    ("/api/v1/clusters", "get"): "list_clusters", ("/api/v1/clusters/{id}", "get"): "get_cluster",
    ("/api/v1/graph", "get"): "graph_page", ("/api/v1/export", "get"): "export",
    ("/api/v1/review", "get"): "list_review",
    ("/api/v1/review/labels", "get"): "review_labels", ("/api/v1/review/{item}", "get"): "get_review_item",
    ("/api/v1/review/{item}", "post"): "judge_review_item",
    ("/api/v1/review/{item}/image", "get"): "review_image",
    ("/api/v1/review/{item}/compare", "get"): "compare_review_item",
    ("/api/v1/events", "get"): "match_events",
    ("/api/v1/compare", "get"): "compare_pictures", ("/api/v1/compare", "post"): "compare_upload",
    ("/api/v1/brands", "get"): "list_brands", ("/api/v1/brands/{name}", "get"): "get_brand",
    ("/api/v1/brands/{name}", "put"): "set_brand", ("/api/v1/brands/{name}", "delete"): "delete_brand",
}


def _named(table: dict) -> dict:
    """``table`` with each operation's ``operationId`` (a KeyError names an operation without one)."""
    return {path: {method: {"operationId": OPERATION_IDS[(path, method)], **op} for method, op in ops.items()}
            for path, ops in table.items()}


def document() -> dict:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "quaid", "version": __version__,
                 "description": "Picture correlation for threat intelligence: accepted / to-review / "
                                "rejected answers for a new picture against known ones. Every change "
                                f"(POST, PATCH, DELETE) needs the header '{HEADER}: 1' or a JSON "
                                "body: a web page cannot send either to another site. Every error "
                                "answers {\"error\": \"<one line>\"}."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _named(paths()),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "read or read-write API key; none needed when "
                                                          "the service has no keys (loopback only)"}},
            "responses": {f"E{code}": _model(models.Error, text) for code, text in _ERRORS.items()},
        },
    }


@blueprint.get("/openapi.json")
@requires(Access.NONE)
def openapi_json() -> Response:
    return jsonify(document())

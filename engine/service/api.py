"""The JSON API under ``/api/v1``: pictures, search, hashes, batch jobs, clusters, export.

A thin layer over :class:`engine.core.Quaid` (see its CONTRACT docstring): each
view checks its inputs (:mod:`engine.service.inputs`), calls the facade and
answers with one of the typed models of :mod:`engine.service.models`; errors are
exceptions turned into status codes by :mod:`engine.service.errors`. The OpenAPI
document (:mod:`engine.service.openapi`) describes every route here with schemas
generated from the same models; a test checks that none is missing.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from engine.brands import query_domains
from engine.errors import BadInput, NotFound
from engine.exchange import hash_record
from engine.graph_page import DEFAULT_LIMIT as DEFAULT_GRAPH_LIMIT
from engine.graph_page import MAX_LIMIT as MAX_GRAPH_LIMIT
from engine.graph_page import graph_page
from engine.hash_import import import_list, import_summary, read_list
from engine.neighbours import stored_matches
from engine.review import search_and_record, search_hashes_and_record
from engine.service import cluster_models, models
from engine.service.auth import Access, caller_id, require_access, requires
from engine.service.inputs import (
    MAX_NAME_LENGTH,
    MAX_TOP,
    bool_arg,
    check_metadata,
    clean_text,
    cluster_id,
    file_parts,
    int_arg,
    json_object_body,
    metadata_from,
    picture_id,
    read_upload,
    single_file,
    tags_from,
    with_brand_fields,
)
from engine.service.jobs import JobFile, JobQueue
from engine.service.models import answer

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_MEMBERS = 1000  # members of a cluster sent in one answer (the default, and the most)
MAX_OFFSET = 10**9


def quaid():
    """The engine facade of this app (one per process, shared by the request threads)."""
    return current_app.extensions["quaid"]


# --- pictures ---------------------------------------------------------------

@blueprint.post("/pictures")
@requires(Access.WRITE)
def add_picture() -> Response:
    upload = single_file()
    name = clean_text(request.form.get("name") or upload.filename, MAX_NAME_LENGTH, "name")
    tags = tags_from(request.form.getlist("tags") + request.form.getlist("tag"))
    metadata = with_brand_fields(metadata_from(request.form.get("metadata")), request.form)
    result = quaid().add(upload.data, name=name, tags=tags, metadata=metadata).to_json()
    return answer(models.AddAnswer, result, 201 if result.get("status") == "added" else 200)


@blueprint.get("/pictures/<pid>")
@requires(Access.READ)
def get_picture(pid: str) -> Response:
    return answer(models.Picture, quaid().get(picture_id(pid)).to_json())


@blueprint.get("/pictures/<pid>/image")
@requires(Access.READ)
def picture_image(pid: str) -> Response:
    pid = picture_id(pid)
    found = quaid().image(pid)
    if found is None:
        quaid().get(pid)  # 404 for an unknown id, before saying nothing is kept
        raise NotFound("no image kept for this picture (the service stores features only)")
    data, content_type = found
    return Response(data, mimetype=content_type, headers={"Cache-Control": "private, max-age=86400"})


@blueprint.get("/pictures/<pid>/matches")
@requires(Access.READ)
def picture_matches(pid: str) -> Response:
    """The stored picture's accepted and to-review matches (the web UI's picture page)."""
    pid = picture_id(pid)
    top = int_arg(request.args.get("top"), "top", 10, 1, MAX_TOP)
    return answer(models.PictureMatches, {"id": pid, "matches": stored_matches(quaid(), pid, top)})


@blueprint.patch("/pictures/<pid>")
@requires(Access.WRITE)
def update_picture(pid: str) -> Response:
    body = json_object_body()
    unknown = set(body) - {"tags", "metadata"}
    if unknown:
        raise BadInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise BadInput("tags must be a list of strings")
    metadata = body.get("metadata")
    if metadata is not None:
        metadata = check_metadata(metadata)
    tags = tags_from(tags) if tags is not None else None
    record = quaid().update(picture_id(pid), tags=tags, metadata=metadata)
    return answer(models.Picture, record.to_json())


@blueprint.delete("/pictures/<pid>")
@requires(Access.WRITE)
def delete_picture(pid: str) -> Response:
    pid = picture_id(pid)
    quaid().delete(pid)
    return answer(models.Deleted, {"id": pid, "status": "deleted"})


# --- search -----------------------------------------------------------------

@blueprint.post("/search")
@requires(Access.READ)
def search() -> Response:
    upload = single_file()
    top = int_arg(request.form.get("top") or request.args.get("top"), "top", 10, 1, MAX_TOP)
    include_rejected = bool_arg(request.form.get("all") or request.args.get("all"), "all")
    domain = [d for d in request.form.getlist("domain") + request.args.getlist("domain") if d] or None
    reviews = current_app.extensions["quaid_review"]
    found = search_and_record(quaid(), reviews, upload.data, upload.filename, top, include_rejected, domain)
    return answer(models.SearchAnswer, found)


@blueprint.post("/hash")
@requires(Access.READ)
def hash_picture() -> Response:
    """The picture's hashes as partners' tools compute them (:mod:`engine.exchange`); stores nothing."""
    upload = single_file()
    engine = quaid()
    record = hash_record(upload.data, upload.filename, max_pixels=engine.settings.max_pixels,
                         working_side=engine.settings.working_side, budget=engine.budget)
    return answer(models.HashRecord, record)


@blueprint.post("/search/hashes")
@requires(Access.READ)
def search_hashes() -> Response:
    """A partner's hashes instead of a picture (:mod:`engine.hash_search`); never accepted."""
    body = json_object_body('{"hashes": {"pdq": "..."}, "top": 10, "all": false, "domain": "..."}')
    unknown = set(body) - {"hashes", "top", "all", "domain"}
    if unknown:
        raise BadInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    top = body.get("top", 10)
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= MAX_TOP:
        raise BadInput(f"top must be an integer between 1 and {MAX_TOP}")
    include_rejected = body.get("all", False)
    if not isinstance(include_rejected, bool):
        raise BadInput("all must be true or false")
    domain = body.get("domain")
    if not (domain is None or isinstance(domain, str)
            or isinstance(domain, list) and all(isinstance(d, str) for d in domain)):
        raise BadInput("domain must be a host name or URL, or a list of them")
    reviews = current_app.extensions["quaid_review"]
    found = search_hashes_and_record(quaid(), reviews, body.get("hashes"), top, include_rejected, domain)
    return answer(models.HashSearchAnswer, found)


@blueprint.post("/hashes")
@requires(Access.WRITE)
def import_hashes() -> Response:
    """A partner's hash list stored as hash-only references (:mod:`engine.hash_import`)."""
    body = json_object_body('{"format": "pdq-csv", "list": "<hash>,<quality>,<name>\\n..."}')
    unknown = set(body) - {"format", "list", "hash_name", "tags"}
    if unknown:
        raise BadInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    text, fmt, hash_name = body.get("list"), body.get("format"), body.get("hash_name")
    if not isinstance(text, str) or not isinstance(fmt, str) or not isinstance(hash_name, str | None):
        raise BadInput("format and list must be strings (hash_name too, when given)")
    if not isinstance(body.get("tags", []), list):
        raise BadInput("tags must be a list of strings")
    tags = tags_from(body.get("tags", []))
    results = import_list(quaid(), read_list(text, fmt, hash_name), tags)
    return answer(models.HashImportAnswer, import_summary(results))


# --- batch jobs -------------------------------------------------------------

def jobs() -> JobQueue:
    return current_app.extensions["quaid_jobs"]


@blueprint.post("/jobs")
@requires(Access.READ)  # search jobs only read; add jobs are checked below
def submit_job() -> Response:
    parts = file_parts()
    action = request.form.get("action") or request.args.get("action") or ""
    if action == "add":
        require_access(Access.WRITE)
    options = {
        "top": int_arg(request.form.get("top"), "top", 10, 1, MAX_TOP),
        "tags": tags_from(request.form.getlist("tags") + request.form.getlist("tag")),
        "metadata": metadata_from(request.form.get("metadata")),
    }
    if action == "add":
        options["metadata"] = with_brand_fields(options["metadata"], request.form)
    elif request.form.get("domain"):  # where the searched pictures were seen: brand verdicts
        options["domain"] = list(query_domains([d for d in request.form.getlist("domain") if d]))
    files = (JobFile(upload.filename, upload.data) for upload in map(read_upload, parts))  # one at a time
    job = jobs().submit(action, files, options, caller=caller_id())
    response = answer(models.JobQueued, {"job": job, "status": "queued", "total": len(parts)}, 202)
    response.headers["Location"] = f"/api/v1/jobs/{job}"
    return response


@blueprint.get("/jobs/<job>")
@requires(Access.READ)
def job_status(job: str) -> Response:
    return answer(models.Job, jobs().status(job))


# --- clusters and export ----------------------------------------------------

@blueprint.get("/clusters")
@requires(Access.READ)
def clusters() -> Response:
    return answer(cluster_models.Clusters, {"clusters": quaid().clusters()})


@blueprint.get("/clusters/<cid>")
@requires(Access.READ)
def cluster(cid: str) -> Response:
    offset = int_arg(request.args.get("offset"), "offset", 0, 0, MAX_OFFSET)
    limit = int_arg(request.args.get("limit"), "limit", MAX_MEMBERS, 1, MAX_MEMBERS)
    return answer(cluster_models.ClusterDetail, quaid().cluster(cluster_id(cid), offset, limit))


@blueprint.get("/graph")
@requires(Access.READ)
def graph() -> Response:
    """One page of the graph for the web UI's graph view (:mod:`engine.graph_page`)."""
    offset = int_arg(request.args.get("offset"), "offset", 0, 0, MAX_OFFSET)
    limit = int_arg(request.args.get("limit"), "limit", DEFAULT_GRAPH_LIMIT, 1, MAX_GRAPH_LIMIT)
    return answer(cluster_models.GraphPage, graph_page(quaid(), offset, limit))


@blueprint.get("/export")
@requires(Access.READ)
def export() -> Response:
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "graph"):
        raise BadInput("format must be json or graph")
    return answer(cluster_models.Export if fmt == "json" else cluster_models.Graph, quaid().export(fmt))

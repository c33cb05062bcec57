"""The visual difference as PNG: two stored pictures, an upload against a stored one, a review item.

A thin layer over :mod:`engine.compare`: ids are checked (400 malformed, 404 unknown), a
picture without the verifier's stored feature answers 422, and the PNG carries the numbers
it shows as ``X-Quaid-*`` headers (:meth:`engine.visual_diff.VisualDiff.headers`).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from engine.compare import compare_query, compare_review, compare_stored
from engine.errors import BadInput
from engine.service.api import quaid
from engine.service.auth import Access, requires
from engine.service.inputs import picture_id, single_file
from engine.visual_diff import VisualDiff

blueprint = Blueprint("compare", __name__, url_prefix="/api/v1")


@blueprint.get("/compare")
@requires(Access.READ)
def compare_pictures() -> Response:
    """Stored picture ``b`` aligned onto stored picture ``a``."""
    return _png(compare_stored(quaid(), _id_arg(request.args, "a"), _id_arg(request.args, "b")))


@blueprint.post("/compare")
@requires(Access.READ)
def compare_upload() -> Response:
    """Stored picture ``b`` aligned onto the uploaded picture (stores nothing)."""
    b = _id_arg(request.form if "b" in request.form else request.args, "b")
    upload = single_file()
    return _png(compare_query(quaid(), upload.data, b))


@blueprint.get("/review/<item>/compare")
@requires(Access.READ)
def compare_review_item(item: str) -> Response:
    """A review item's stored picture aligned onto its searched picture."""
    return _png(compare_review(quaid(), current_app.extensions["quaid_review"], item))


def _id_arg(values, name: str) -> str:
    value = values.get(name)
    if not value:
        raise BadInput(f"give the picture id as {name}=<64 hex characters>")
    return picture_id(value)


def _png(diff: VisualDiff) -> Response:
    return Response(diff.png, mimetype="image/png",
                    headers={"Cache-Control": "private, max-age=3600", **diff.headers()})

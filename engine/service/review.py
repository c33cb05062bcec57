"""The review queue's HTTP API: list items, show one and its query thumbnail, judge, labels.

The queue itself (storage, recording, verdicts) is :mod:`engine.review`.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from engine.errors import BadInput, NotFound
from engine.review import ReviewQueue, judge_and_mark
from engine.service import models
from engine.service.auth import Access, requires
from engine.service.inputs import int_arg
from engine.service.models import answer

blueprint = Blueprint("review", __name__, url_prefix="/api/v1/review")


def queue() -> ReviewQueue:
    return current_app.extensions["quaid_review"]


@blueprint.get("")
@requires(Access.READ)
def list_items() -> Response:
    status = request.args.get("status", "pending")
    limit = int_arg(request.args.get("limit"), "limit", 50, 1, 500)
    offset = int_arg(request.args.get("offset"), "offset", 0, 0, 10_000_000)
    return answer(models.ReviewPage, queue().items(status, limit, offset))


@blueprint.get("/labels")
@requires(Access.READ)
def labels() -> Response:
    return answer(models.Labels, {"labels": queue().labels()})


@blueprint.get("/<item>")
@requires(Access.READ)
def get_item(item: str) -> Response:
    found = queue().get(item)
    if found is None:
        raise NotFound(f"no review item {item[:80]}")
    return answer(models.ReviewItem, found)


@blueprint.get("/<item>/image")
@requires(Access.READ)
def item_image(item: str) -> Response:
    return Response(queue().thumbnail(item), mimetype="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


@blueprint.post("/<item>")
@requires(Access.WRITE)
def judge(item: str) -> Response:
    try:
        body = request.get_json(silent=True) if request.is_json else None
    except RecursionError:  # absurdly deep JSON (silent=True only covers ValueError): a 400 below
        body = None
    # JSON only: a verdict in form fields could come from a form on any web page.
    verdict = body.get("verdict") if isinstance(body, dict) else None
    if not isinstance(verdict, str):
        raise BadInput("send {\"verdict\": \"accepted\" | \"rejected\" | \"noise\"}")
    judged = judge_and_mark(current_app.extensions["quaid"], queue(), item, verdict)
    return answer(models.ReviewItem, judged)

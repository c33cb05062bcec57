"""``GET /api/v1/events``: the match events connectors follow (:mod:`engine.store.match_events`).

A connector keeps the ``next`` position of its last read and asks for the events after it;
reading is free of side effects, so a connector that died before saving its position reads
the same events again (its writes are idempotent).
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from engine.service import models
from engine.service.api import quaid
from engine.service.auth import Access, requires
from engine.service.inputs import int_arg
from engine.service.models import answer
from engine.store.match_events import MAX_PAGE

blueprint = Blueprint("events", __name__, url_prefix="/api/v1")


@blueprint.get("/events")
@requires(Access.READ)
def match_events() -> Response:
    limit = int_arg(request.args.get("limit"), "limit", 100, 1, MAX_PAGE)
    return answer(models.MatchEventPage, quaid().events.read(request.args.get("after"), limit))

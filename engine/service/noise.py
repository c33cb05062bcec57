"""The noise bank's HTTP API: mark and unmark a stored picture as noise, list the bank.

The bank itself (what a mark does to answers, where it is stored) is :mod:`engine.noise`.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from engine.service import models
from engine.service.auth import Access, requires
from engine.service.inputs import int_arg, picture_id
from engine.service.models import answer

blueprint = Blueprint("noise", __name__, url_prefix="/api/v1")
MAX_LIST = 1000  # pictures in one page of the list


def bank():
    return current_app.extensions["quaid"].noise


@blueprint.post("/pictures/<pid>/noise")
@requires(Access.WRITE)
def mark(pid: str) -> Response:
    """Put the picture in the noise bank: it is no longer reported as a match."""
    return answer(models.Picture, bank().mark(picture_id(pid)).to_json())


@blueprint.delete("/pictures/<pid>/noise")
@requires(Access.WRITE)
def unmark(pid: str) -> Response:
    """Take the picture out of the noise bank (whoever put it there: an analyst or the detector)."""
    return answer(models.Picture, bank().unmark(picture_id(pid)).to_json())


@blueprint.get("/noise")
@requires(Access.READ)
def list_noise() -> Response:
    limit = int_arg(request.args.get("limit"), "limit", 100, 1, MAX_LIST)
    offset = int_arg(request.args.get("offset"), "offset", 0, 0, 10**9)
    return answer(models.NoiseList, bank().list(offset, limit))

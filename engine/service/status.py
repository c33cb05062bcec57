"""Health endpoints, as in Meta's HMA: ``/status/live`` (alive) and ``/status`` (ready).

``/status/live`` answers as long as the process serves requests (for a process
supervisor); ``/status`` answers 200 only when the store answers and the
engine can count its pictures (for a load balancer), else 503 with the reason.
Neither needs an API key: they reveal counts, never pictures or names.
"""

from __future__ import annotations

import time

import redis
from flask import Blueprint, Response, current_app
from redis.exceptions import RedisClusterException

from engine import __version__
from engine.errors import QuaidError
from engine.service import models
from engine.service.auth import Access, requires
from engine.service.errors import one_line, revive_embedded_store
from engine.service.models import answer
from engine.store import keys

blueprint = Blueprint("status", __name__, url_prefix="/status")

_STARTED = time.time()


@blueprint.get("/live")
@requires(Access.NONE)
def live() -> Response:
    return answer(models.Live, {"status": "alive", "version": __version__,
                                "uptime": round(time.time() - _STARTED, 1)})


@blueprint.get("")
@requires(Access.NONE)
def ready() -> Response:
    try:
        stats = current_app.extensions["quaid"].stats()
        pending = current_app.extensions["quaid_redis"].xlen(keys.JOB_STREAM)
    except (redis.exceptions.RedisError, RedisClusterException, QuaidError) as exc:
        revive_embedded_store(current_app)
        return answer(models.Unavailable, {"status": "unavailable",
                                           "error": one_line(f"store unavailable: {exc}")}, 503)
    return answer(models.Ready, {
        "status": "ready", "version": __version__, "stats": stats, "jobs_queued": pending,
        "max_upload_bytes": current_app.config["QUAID_MAX_UPLOAD_BYTES"],
        "auth": current_app.extensions["quaid_keys"].enabled,
    })

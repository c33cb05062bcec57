"""Every failure of the service as a proper HTTP status with ``{"error": "<one line>"}``.

Why: douglas-quaid answered every error with HTTP 200 and ``"Status": "Failure"``,
so MISP modules and scripts could not tell a bad picture from a broken server.
Here:

* :class:`engine.errors.QuaidError` -> its ``http_status`` (400, 404, 413, 415, 429, 503), with
  ``Retry-After`` when the error says when to retry;
* Flask/Werkzeug's own errors (404 unknown route, 405, 413 body over
  ``MAX_CONTENT_LENGTH``) -> the same JSON shape;
* Redis connection loss, or a Redis Cluster failing over -> 503, so clients retry
  instead of giving up;
* anything else -> 500 with a generic message (the traceback goes to the log,
  never to the client).
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from flask import Flask, Response
from redis.exceptions import ClusterDownError, RedisClusterException, TryAgainError
from werkzeug.exceptions import HTTPException

from engine.errors import QuaidError, StoreUnavailable
from engine.service.models import Error, answer

log = logging.getLogger("quaid.service")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The one error shape of the API: ``{"error": message}`` with ``status``."""
    response = answer(Error, {"error": one_line(message)}, status)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def one_line(message: str, limit: int = 300) -> str:
    """Collapse whitespace so a reason always fits on one log/UI line."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on ``app`` (called by the app factory)."""

    @app.errorhandler(QuaidError)
    def _quaid_error(exc: QuaidError) -> Response:
        if exc.http_status >= 500:
            log.warning("%s: %s", type(exc).__name__, exc)
        if isinstance(exc, StoreUnavailable):
            revive_embedded_store(app)
        retry = getattr(exc, "retry_after", None)  # 429 and 503 tell the client when to come back
        headers = {"Retry-After": str(retry)} if retry else None
        return error_response(exc.http_status, str(exc) or type(exc).__name__, headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = _HTTP_MESSAGES.get(status) or exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body too large (limit {limit} bytes)" if limit else message
        response = error_response(status, message)
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    @app.errorhandler(ClusterDownError)  # a Redis Cluster failing over (engine.store.cluster)
    @app.errorhandler(TryAgainError)
    @app.errorhandler(RedisClusterException)
    def _store_down(exc: Exception) -> Response:
        log.warning("store unreachable: %s", exc)
        revive_embedded_store(app)
        return error_response(503, "store unavailable: Redis cannot be reached, retry later",
                              {"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        return error_response(500, "internal error (see the service log)")


REVIVE_EVERY = 5.0  # seconds between attempts to restart a dead embedded Redis
_revive_lock = threading.Lock()


def revive_embedded_store(app: Flask) -> None:
    """Restart the embedded Redis if it died, at most every :data:`REVIVE_EVERY` seconds.

    The embedded Redis (the default one-machine set-up) has no supervisor but the
    processes using it: when it dies (crash, OOM kill) the next request or ``/status``
    probe that finds it gone starts it again from its data directory (append-only
    file). That request still answers 503; the following ones are served. A no-op
    for an external Redis, which its own supervisor restarts.
    """
    quaid = app.extensions.get("quaid")
    if not hasattr(quaid, "revive_store") or not _revive_lock.acquire(blocking=False):
        return
    try:
        now = time.monotonic()
        if now - app.extensions.get("quaid_revived_at", -REVIVE_EVERY) < REVIVE_EVERY:
            return
        app.extensions["quaid_revived_at"] = now
        if quaid.revive_store():
            log.warning("the embedded Redis did not answer: started it again")
    except (QuaidError, redis.RedisError, OSError) as exc:
        log.warning("cannot restart the embedded Redis: %s", exc)
    finally:
        _revive_lock.release()


_HTTP_MESSAGES = {
    404: "no such endpoint",
    405: "method not allowed on this endpoint",
}

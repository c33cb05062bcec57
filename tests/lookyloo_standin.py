"""A stand-in for the part of Lookyloo's web API that ``quaid lookyloo-import`` uses.

It answers as Lookyloo 1.40.0 defines it (Lookyloo/lookyloo def517a6, website/web/genericapi.py
and lookyloo/lookyloo.py), for the requests PyLookyloo makes (pylookyloo/api.py, 1.40.0 at
Lookyloo/PyLookyloo db81a250; 1.43.0 installed, same routes):

- ``HEAD /`` (``Lookyloo.is_up``): 200.
- ``GET /json/recent_captures`` and ``/json/recent_captures/<timestamp>``
  (``get_recent_captures``; PyLookyloo sends a datetime as ``str(datetime.timestamp())``):
  the capture UUIDs between ``since`` and now, newest first (``zrevrangebyscore``); without a
  timestamp, the last day. Anonymous callers get the public captures only (those listed on
  the index, ``recent_captures_public``), a caller whose ``Authorization`` header holds a
  known API key gets all; an unknown key is treated as anonymous (``load_user_from_request``
  returns no user). A timestamp ``dateparser.parse`` cannot read leaves ``_since`` unset:
  Lookyloo fails with a 500.
- ``GET /json/<uuid>/info`` (``get_info``): ``{"uuid", "url", "title", "capture_time"
  (isoformat of the capture's tz-aware start time), "user_agent", "referer", "error"?}``;
  an unknown capture: 404 ``{"error": "Unable to find UUID <uuid> in the cache."}``.
- ``GET /json/<uuid>/redirects`` (``get_redirects``): ``{"response": {"url", "redirects": [the
  URLs the capture went through, the landing page last]}}`` (plus ``"info": "No redirects"``);
  an unknown capture: 400 ``{"error": "UUID missing in cache, ..."}``.
- ``GET /bin/<uuid>/screenshot`` (``get_screenshot``): the PNG (``image/png``), or 404
  ``{"error": "No screenshot available"}``. PyLookyloo returns the body whatever the status.

The ``<uuid:...>`` routes accept only UUIDs (anything else: 404, as flask-restx answers
``{"message": ...}``); info and screenshot need no key (a capture's UUID is its secret).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dateparser  # Lookyloo's own date parser (a PyLookyloo dependency)
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server


@dataclass
class Capture:
    url: str
    when: datetime  # tz-aware
    screenshot: bytes | None
    public: bool = True
    title: str = ""
    uuid: str = ""
    error: str | None = None
    redirects: tuple[str, ...] = ()


class LookylooStandIn:
    """Captures served the way Lookyloo serves them; ``requests`` logs every path asked for."""

    def __init__(self, api_keys: tuple[str, ...] = ()) -> None:
        self.captures: dict[str, Capture] = {}
        self.listed_extra: list[str] = []  # entries a broken or hostile instance adds to its list
        self.api_keys = set(api_keys)
        self.requests: list[str] = []
        self.app = self._build()

    def capture(self, url: str, screenshot: bytes | None, *, hours_ago: float = 1.0, public: bool = True,
                title: str = "", redirects: tuple[str, ...] = ()) -> str:
        when = datetime.now(UTC) - timedelta(hours=hours_ago)
        ident = str(uuid.uuid4())
        self.captures[ident] = Capture(url, when, screenshot, public, title or url, ident,
                                       redirects=redirects)
        return ident

    def _build(self) -> Flask:
        app = Flask("lookyloo-standin")

        @app.before_request
        def log() -> None:
            self.requests.append(request.full_path.rstrip("?"))

        @app.route("/", methods=["GET", "HEAD"])
        def index() -> Response:
            return Response("Lookyloo", mimetype="text/html")

        @app.get("/json/recent_captures")
        @app.get("/json/recent_captures/<string:timestamp>")
        def recent(timestamp: str | None = None):
            now = datetime.now(UTC).timestamp()
            if timestamp is None:
                since = now - 86400
            else:
                parsed = _parse(timestamp)
                if parsed is None:  # Lookyloo: UnboundLocalError on _since
                    return Response("Internal Server Error", 500, mimetype="text/html")
                since = parsed
            authenticated = request.headers.get("Authorization", "").strip() in self.api_keys
            chosen = [c for c in self.captures.values()
                      if since <= c.when.timestamp() <= now and (authenticated or c.public)]
            chosen.sort(key=lambda c: c.when, reverse=True)
            return jsonify([c.uuid for c in chosen] + self.listed_extra)

        @app.get("/json/<uuid:capture_uuid>/info")
        def info(capture_uuid: uuid.UUID):
            found = self.captures.get(str(capture_uuid))
            if found is None:
                return jsonify({"error": f"Unable to find UUID {capture_uuid} in the cache."}), 404
            answer = {"uuid": found.uuid, "url": found.url, "title": found.title,
                      "capture_time": found.when.isoformat(), "user_agent": "Mozilla/5.0 (stand-in)",
                      "referer": ""}
            if found.error:
                answer["error"] = found.error
            return jsonify(answer)

        @app.get("/json/<uuid:capture_uuid>/redirects")
        def redirects(capture_uuid: uuid.UUID):
            found = self.captures.get(str(capture_uuid))
            if found is None:
                missing = "UUID missing in cache, try again later and check the status first."
                return jsonify({"error": missing}), 400
            answer = {"response": {"url": found.url, "redirects": list(found.redirects)}}
            if not found.redirects:
                answer["response"]["info"] = "No redirects"
            return jsonify(answer)

        @app.get("/bin/<uuid:capture_uuid>/screenshot")
        def screenshot(capture_uuid: uuid.UUID):
            found = self.captures.get(str(capture_uuid))
            if found is None or found.screenshot is None:
                return jsonify({"error": "No screenshot available"}), 404
            return Response(found.screenshot, mimetype="image/png")

        @app.errorhandler(404)
        def not_found(_error):
            return jsonify({"message": "The requested URL was not found on the server."}), 404

        return app


def _parse(timestamp: str) -> float | None:
    """``since`` read as Lookyloo reads it: ``dateparser.parse`` (a Unix timestamp, an ISO date,
    "2 days ago"...), then ``.timestamp()`` (a naive answer is local time)."""
    parsed = dateparser.parse(timestamp)
    return parsed.timestamp() if parsed is not None else None


class running:
    """Serve a stand-in on a free loopback port in a thread: ``with running(standin) as url``."""

    def __init__(self, standin: LookylooStandIn) -> None:
        self.server = make_server("127.0.0.1", 0, standin.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_port}/"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()

"""The analyst's web UI at ``/``: search by upload, clusters, the graph, the review queue, a page per
picture and per cluster.

Plain HTML, CSS and JavaScript served from this package — no build step and
no CDN, because the service often runs on an isolated analysis network. The one library, the
graph view's Cytoscape.js, is installed into ``static/vendor/`` by
``scripts/install-ui-libraries.sh``. The page itself holds no data: it calls the JSON API
with the API key the analyst types in (kept in the browser's localStorage), so the UI needs
no auth of its own and can never show more than the key allows.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, render_template, send_from_directory

from engine import __version__
from engine.service.auth import Access, requires

STATIC = Path(__file__).with_name("static")
# Only our own script and styles; thumbnails are blob: URLs made from authorised fetches.
CSP = "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'"

blueprint = Blueprint("ui", __name__, template_folder="templates")


@blueprint.get("/")
@requires(Access.NONE)
def index() -> Response:
    response = Response(render_template("index.html", version=__version__), mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.get("/ui/<path:name>")
@requires(Access.NONE)
def asset(name: str) -> Response:
    """Static files (``send_from_directory`` refuses paths that leave the folder)."""
    response = send_from_directory(STATIC, name, max_age=300)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response

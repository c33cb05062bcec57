"""The three calls of the quaid HTTP API the write-back needs: add, search, get.

A small client of its own rather than ``engine.client``: the write-back runs next to MISP
and must work with only ``requests`` and ``pymisp`` installed.
"""

from __future__ import annotations

import json

import requests

DEFAULT_TOP = 10  # matches considered per picture
DEFAULT_TIMEOUT = 30.0  # seconds per call; batch work, no 10 s enrichment limit here


class QuaidAPIError(Exception):
    """A failed quaid call; ``status`` is the HTTP status (0 when the service is unreachable)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class QuaidAPI:
    """``POST /api/v1/pictures``, ``POST /api/v1/search``, ``GET /api/v1/pictures/<id>``."""

    def __init__(self, url: str, api_key: str = "", timeout: float = DEFAULT_TIMEOUT):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.session.headers["X-Quaid-Request"] = "1"  # quaid refuses writes without it
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def add(self, data: bytes, name: str, metadata: dict) -> dict:
        """Register a picture; same bytes give the same id ("status": "duplicate")."""
        fields = {"name": name, "metadata": json.dumps(metadata)}
        return self._call("POST", "/api/v1/pictures", files={"file": (name, data)}, data=fields)

    def search(self, data: bytes, name: str, top: int) -> dict:
        """quaid's decision and its matches, best first."""
        return self._call("POST", "/api/v1/search", files={"file": (name, data)}, data={"top": str(top)})

    def get(self, picture_id: str) -> dict:
        """The stored record of a picture (name, tags, metadata)."""
        return self._call("GET", f"/api/v1/pictures/{picture_id}")

    def ui_link(self, picture_id: str) -> str:
        """The picture's page in quaid's web UI."""
        return f"{self.url}/#/picture/{picture_id}"

    def _call(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise QuaidAPIError(f"quaid service at {self.url} unreachable: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if 200 <= response.status_code < 300 and isinstance(body, dict):
            return body
        reason = body.get("error") if isinstance(body, dict) else None
        raise QuaidAPIError(reason or f"HTTP {response.status_code}", response.status_code)

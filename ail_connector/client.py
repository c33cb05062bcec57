"""A minimal client of the quaid service: add a picture, search with a picture.

Deliberately standalone (``requests`` and the standard library only): this package is
installed into AIL's virtualenv, which already has ``requests`` but should not pull
quaid's engine dependencies (OpenCV, FAISS, ...). The full-featured Python client of
the service is :mod:`engine.client`; this one speaks the two calls the connector needs:

* ``POST /api/v1/pictures`` — multipart ``file``, optional ``name``, repeatable ``tags``,
  ``metadata`` (a JSON object) → ``{"id", "name", "status", "cluster"}``;
* ``POST /api/v1/search`` — multipart ``file``, optional ``top`` →
  ``{"decision", "matches": [{"id", "name", "distance", "decision", ...}]}``.

Every call has a connect and a read timeout; failures raise :class:`ServiceError` with
a one-line reason (the service's ``{"error": ...}`` when it sent one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_TIMEOUT = (5.0, 30.0)  # seconds: (connect, read)


class ServiceError(Exception):
    """The quaid service could not be reached or refused a request."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class QuaidService:
    """HTTP client of one quaid service (``url`` like ``http://127.0.0.1:8080``)."""

    def __init__(self, url: str, api_key: str | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or _session()
        self.session.headers["X-Quaid-Request"] = "1"  # quaid refuses writes without it
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def add(self, data: bytes, name: str = "", tags: Iterable[str] = (),
            metadata: Mapping | None = None) -> dict:
        """Store a picture; adding the same bytes again answers ``status: duplicate``."""
        fields: list[tuple[str, str]] = [("name", name)] if name else []
        fields += [("tags", tag) for tag in tags]
        if metadata:
            fields.append(("metadata", json.dumps(dict(metadata))))
        return self._post("/api/v1/pictures", data, fields)

    def search(self, data: bytes, top: int = 10) -> dict:
        """Known pictures that are the same or nearly the same, best first."""
        return self._post("/api/v1/search", data, [("top", str(top))])

    def status(self) -> dict:
        """``GET /status`` (ready check); raises :class:`ServiceError` when not ready."""
        return self._answer(self._call("GET", "/status"))

    def close(self) -> None:
        self.session.close()

    def _post(self, path: str, data: bytes, fields: list[tuple[str, str]]) -> dict:
        files = {"file": ("picture", data, "application/octet-stream")}
        return self._answer(self._call("POST", path, data=fields, files=files))

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ServiceError(f"quaid service at {self.url} unreachable: {type(exc).__name__}") from None

    @staticmethod
    def _answer(response: requests.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            reason = body.get("error") if isinstance(body, dict) else None
            raise ServiceError(f"HTTP {response.status_code}: {reason or response.reason}",
                               status=response.status_code)
        if not isinstance(body, dict):
            raise ServiceError(f"HTTP {response.status_code}: answer is not a JSON object",
                               status=response.status_code)
        return body


def _session() -> requests.Session:
    """A session that retries refused connections (service restarting), never a sent request.

    Adding is idempotent (ids are SHA-256 of the bytes), but a search that timed out after
    it was sent is not retried: the caller decides, with the timeout it asked for.
    """
    session = requests.Session()
    retry = Retry(total=3, connect=3, read=0, status=0, other=0, backoff_factor=0.5,
                  allowed_methods=None)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session

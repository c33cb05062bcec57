"""The requests-only Python client of the quaid service's HTTP API.

Where to start::

    from ail_connector.client import QuaidService, ServiceError
    quaid = QuaidService("http://127.0.0.1:8080", api_key="...", timeout=(5, 30), retries=3)
    quaid.add(png_bytes, name="screenshot::<sha256>")   # {"id", "name", "status", "cluster"}
    quaid.search(png_bytes, top=10)["decision"]          # accepted / to-review / rejected
    quaid.wait(quaid.submit([("a.png", a), ("b.png", b)]))  # a batch job, until done

It covers the service's API (pictures, search, jobs, clusters, export, review, status).

Why a separate client: it runs where quaid's engine is not installed (AIL's virtualenv,
Python 3.8 and later) and needs only ``requests`` and the standard library.

Errors form one hierarchy, so a caller decides from the class what to do with the work:

* :class:`ServiceUnavailable` — no answer, a timeout, 5xx, 429: try again later;
* :class:`AuthError` — 401/403, a wrong or read-only API key: keep the work, an operator
  must fix the key, so retry later too, but it is not the service's fault;
* :class:`RequestRefused` — any other 4xx (not a picture, too large, bad field): this
  request will never succeed, drop it;
* :class:`BadAnswer` — a 2xx that is not a JSON object (a proxy page, say).

Every call has a (connect, read) timeout. A refused connection is retried ``retries``
times with exponential backoff (the service restarting); a request that was sent is never
resent by the client, since the caller knows whether it is safe to repeat.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, Tuple, Union

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_TIMEOUT = (5.0, 30.0)  # seconds: (connect, read)
DEFAULT_RETRIES = 3  # connection attempts after the first, for a refused connection
DEFAULT_BACKOFF = 0.5  # seconds: urllib3 backoff factor (0.5, 1, 2, ... between attempts)

# The service refuses state-changing requests without this header (a browser page cannot
# send it to another origin without a CORS preflight), so every API client sends it.
REQUEST_HEADER = ("X-Quaid-Request", "1")

Timeout = Union[float, Tuple[float, float]]


class ServiceError(Exception):
    """The quaid service could not be used for this request; ``status`` is the HTTP status, if any."""

    transient = False  # whether the same request may succeed later without anyone's help

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class ServiceUnavailable(ServiceError):
    """Unreachable, timed out, overloaded (429) or failing (5xx): try again later."""

    transient = True


class AuthError(ServiceError):
    """401/403: the API key is missing, wrong or may not do this. Keep the work; fix the key."""


class RequestRefused(ServiceError):
    """Another 4xx: this request is wrong (not a picture, too large, bad field) and stays wrong."""


class BadAnswer(ServiceError):
    """A success status whose body is not a JSON object."""


class JobTimeout(ServiceUnavailable):
    """A batch job was not finished within the time :meth:`QuaidService.wait` was given."""


class QuaidService:
    """HTTP client of one quaid service (``url`` like ``http://127.0.0.1:8080``).

    ``timeout`` is seconds, one number or (connect, read); ``retries`` and ``backoff``
    govern reconnecting when the connection is refused. One instance per thread.
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: Timeout = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, backoff: float = DEFAULT_BACKOFF,
                 session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or _session(retries, backoff)
        self.session.headers[REQUEST_HEADER[0]] = REQUEST_HEADER[1]
        if api_key:
            self.session.headers["Authorization"] = "Bearer " + api_key

    # --- pictures ---------------------------------------------------------------------

    def add(self, data: bytes, name: str = "", tags: Iterable[str] = (),
            metadata: Mapping | None = None) -> dict[str, Any]:
        """Store a picture; adding the same bytes again answers ``status: duplicate``."""
        fields: list[tuple[str, str]] = [("name", name)] if name else []
        fields += [("tags", tag) for tag in tags]
        if metadata:
            fields.append(("metadata", json.dumps(dict(metadata))))
        return self._post_picture("/api/v1/pictures", data, fields)

    def get(self, picture_id: str) -> dict[str, Any]:
        """A stored picture's record (name, tags, metadata, cluster)."""
        return self._json("GET", "/api/v1/pictures/" + picture_id)

    def image(self, picture_id: str) -> bytes:
        """The stored thumbnail's bytes (404, a :class:`RequestRefused`, when the service keeps none)."""
        return self._request("GET", "/api/v1/pictures/" + picture_id + "/image").content

    def update(self, picture_id: str, tags: Iterable[str] | None = None,
               metadata: Mapping | None = None) -> dict[str, Any]:
        """Replace a picture's tags and/or metadata."""
        body: dict[str, Any] = {}
        if tags is not None:
            body["tags"] = list(tags)
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self._json("PATCH", "/api/v1/pictures/" + picture_id, json=body)

    def delete(self, picture_id: str) -> dict[str, Any]:
        return self._json("DELETE", "/api/v1/pictures/" + picture_id)

    # --- search -----------------------------------------------------------------------

    def search(self, data: bytes, top: int = 10, include_rejected: bool = False) -> dict[str, Any]:
        """Known pictures that are the same or nearly the same, best first:
        ``{"decision", "matches": [{"id", "name", "distance", "decision", ...}]}``."""
        fields = [("top", str(top)), ("all", "true" if include_rejected else "false")]
        return self._post_picture("/api/v1/search", data, fields)

    # --- batch jobs -------------------------------------------------------------------

    def submit(self, pictures: Iterable[tuple[str, bytes]], action: str = "search", top: int = 10,
               tags: Iterable[str] = ()) -> str:
        """Queue a batch job over ``(name, bytes)`` pairs (``action`` ``search`` or ``add``); its id."""
        files = [("file", (name, data, "application/octet-stream")) for name, data in pictures]
        fields = [("action", action), ("top", str(top))] + [("tags", tag) for tag in tags]
        return str(self._json("POST", "/api/v1/jobs", data=fields, files=files)["job"])

    def job_status(self, job: str) -> dict[str, Any]:
        return self._json("GET", "/api/v1/jobs/" + job)

    def wait(self, job: str, timeout: float = 600.0, interval: float = 0.5) -> dict[str, Any]:
        """Poll a job until it is ``done`` or ``failed`` (growing intervals, seconds); its state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.job_status(job)
            if state.get("status") in ("done", "failed"):
                return state
            if time.monotonic() > deadline:
                raise JobTimeout("job {} still {} after {:g} s".format(job, state.get("status"), timeout))
            time.sleep(interval)
            interval = min(interval * 1.5, 5.0)

    # --- browse and review -------------------------------------------------------------

    def clusters(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/api/v1/clusters")["clusters"])

    def cluster(self, cluster_id: str) -> dict[str, Any]:
        return self._json("GET", "/api/v1/clusters/" + str(cluster_id))

    def export(self, fmt: str = "json") -> dict[str, Any]:
        return self._json("GET", "/api/v1/export", params={"format": fmt})

    def reviews(self, status: str = "pending", limit: int = 50, offset: int = 0) -> dict[str, Any]:
        params = {"status": status, "limit": limit, "offset": offset}
        return self._json("GET", "/api/v1/review", params=params)

    def judge(self, item: str, verdict: str) -> dict[str, Any]:
        return self._json("POST", "/api/v1/review/" + item, json={"verdict": verdict})

    def labels(self) -> list[dict[str, Any]]:
        """The analysts' verdicts as a labelled list."""
        return list(self._json("GET", "/api/v1/review/labels")["labels"])

    def status(self) -> dict[str, Any]:
        """``GET /status`` (ready check); raises :class:`ServiceUnavailable` when not ready."""
        return self._json("GET", "/status")

    def close(self) -> None:
        self.session.close()

    # --- plumbing ---------------------------------------------------------------------

    def _post_picture(self, path: str, data: bytes, fields: list[tuple[str, str]]) -> dict[str, Any]:
        files = {"file": ("picture", data, "application/octet-stream")}
        return self._json("POST", path, data=fields, files=files)

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if not isinstance(body, dict):
            raise BadAnswer(f"HTTP {status}: answer is not a JSON object", status)
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP call; an error status or no answer raises the matching :class:`ServiceError`."""
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise ServiceUnavailable(f"quaid at {self.url}: no answer within {self.timeout} s") from None
        except requests.RequestException as exc:
            raise ServiceUnavailable(f"quaid at {self.url} unreachable: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise error_for_status(response.status_code, f"HTTP {response.status_code}: {_reason(response)}")
        return response


def _reason(response: requests.Response) -> str:
    """The service's ``{"error": ...}``, else the status line's reason."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = body.get("error") if isinstance(body, dict) else None
    text = str(reason or response.reason or "").strip()
    return text.splitlines()[0] if text else "error"


def error_for_status(status: int, reason: str) -> ServiceError:
    """The :class:`ServiceError` subclass for an HTTP error status."""
    if status in (401, 403):
        return AuthError(reason, status)
    if status == 429 or status >= 500:
        return ServiceUnavailable(reason, status)
    return RequestRefused(reason, status)


def _session(retries: int, backoff: float) -> requests.Session:
    """A session that reconnects when the connection is refused, and never resends a sent request."""
    session = requests.Session()
    retry = Retry(total=retries, connect=retries, read=0, status=0, backoff_factor=backoff)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session

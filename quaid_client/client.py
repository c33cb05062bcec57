"""The HTTP client of one quaid service: every endpoint of ``/api/v1``, ``/status``, one error hierarchy.

Every call has a (connect, read) timeout. A refused connection is retried ``retries`` times
with exponential backoff (the service restarting); a request that was sent is never resent,
since only the caller knows whether it is safe to repeat. With ``budget`` (seconds), all the
calls of one client share one deadline: each gets the time left, and none starts once it has
passed (MISP waits 10 s for a module's whole answer, however many calls it makes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Dict, Tuple, Union
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from quaid_client.errors import BadAnswer, JobTimeout, RequestRefused, ServiceUnavailable, error_for_status

DEFAULT_TIMEOUT = (5.0, 30.0)  # seconds: (connect, read)
DEFAULT_RETRIES = 3  # connection attempts after the first, for a refused connection
DEFAULT_BACKOFF = 0.5  # seconds: urllib3 backoff factor (0.5, 1, 2, ... between attempts)
LAST_CALL = 0.05  # seconds: with less left before the deadline, no call is started
PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}

# The service refuses state-changing requests without this header (a browser page cannot
# send it to another origin without a CORS preflight), so every API client sends it.
REQUEST_HEADER = ("X-Quaid-Request", "1")

Timeout = Union[float, Tuple[float, float]]
Answer = Dict[str, Any]


class QuaidClient:
    """Client of one quaid service (``url`` like ``http://127.0.0.1:8080``); one instance per thread.

    ``timeout`` is seconds, one number or (connect, read); ``retries`` and ``backoff`` govern
    reconnecting when the connection is refused; ``budget`` is seconds for all calls together.
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: Timeout = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, backoff: float = DEFAULT_BACKOFF,
                 budget: float | None = None, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.budget = budget
        self.deadline = time.monotonic() + budget if budget is not None else None  # time.monotonic()
        self.session = session or _session(retries, backoff)
        self.session.headers[REQUEST_HEADER[0]] = REQUEST_HEADER[1]
        self.session.headers["Accept"] = "application/json"
        if api_key:
            self.session.headers["Authorization"] = "Bearer " + api_key

    def __enter__(self) -> QuaidClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def left(self) -> float:
        """Seconds left before the deadline (negative once past it; infinite without a budget)."""
        return self.deadline - time.monotonic() if self.deadline is not None else float("inf")

    # --- pictures ---------------------------------------------------------------------

    def add(self, data: bytes, name: str = "", tags: Iterable[str] = (),
            metadata: Mapping | None = None) -> Answer:
        """Store a picture: ``{"id", "name", "status", "cluster"}``; the same bytes again answer
        ``status: duplicate`` (ids are the bytes' SHA-256)."""
        fields: list[tuple[str, str]] = [("name", name)] if name else []
        fields += [("tags", tag) for tag in tags]
        if metadata:
            fields.append(("metadata", json.dumps(dict(metadata))))
        return self._post_picture("/api/v1/pictures", data, name, fields)

    def add_folder(self, folder: str | Path, tags: Iterable[str] = (),
                   errors: dict[str, str] | None = None) -> dict[str, str]:
        """Add every picture file under ``folder`` (recursive); {relative file name: id}.

        A file that cannot be read or that the service refuses does not stop the others: its
        one-line reason goes to ``errors`` (file name -> reason) when a dict is given.
        """
        root = Path(folder)
        mapping: dict[str, str] = {}
        for path in _pictures_under(root):
            key = str(path.relative_to(root))
            try:
                mapping[key] = str(self.add(path.read_bytes(), name=path.name, tags=tags)["id"])
            except (OSError, RequestRefused) as exc:  # this file only; others (key, service down) stop
                if errors is not None:
                    errors[key] = getattr(exc, "strerror", None) or str(exc)
        return mapping

    def get(self, picture_id: str) -> Answer:
        """A stored picture's record (name, tags, metadata, cluster, ...)."""
        return self._json("GET", "/api/v1/pictures/" + picture_id)

    def image(self, picture_id: str) -> tuple[bytes, str]:
        """The stored picture or its thumbnail, with its content type (404, a
        :class:`~quaid_client.RequestRefused`, when the service keeps none)."""
        response = self._request("GET", "/api/v1/pictures/" + picture_id + "/image")
        return response.content, response.headers.get("Content-Type", "")

    def matches(self, picture_id: str, top: int = 10) -> Answer:
        """A stored picture's accepted and to-review matches among the stored pictures."""
        return self._json("GET", "/api/v1/pictures/" + picture_id + "/matches", params={"top": top})

    def update(self, picture_id: str, tags: Iterable[str] | None = None,
               metadata: Mapping | None = None) -> Answer:
        """Replace a picture's tags and/or metadata; the new record."""
        body: dict[str, Any] = {}
        if tags is not None:
            body["tags"] = list(tags)
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self._json("PATCH", "/api/v1/pictures/" + picture_id, json=body)

    def delete(self, picture_id: str) -> Answer:
        return self._json("DELETE", "/api/v1/pictures/" + picture_id)

    def mark_noise(self, picture_id: str) -> Answer:
        """Put a stored picture in the noise bank (never reported as a match); its record."""
        return self._json("POST", "/api/v1/pictures/" + picture_id + "/noise")

    def unmark_noise(self, picture_id: str) -> Answer:
        """Take a picture out of the noise bank; its record."""
        return self._json("DELETE", "/api/v1/pictures/" + picture_id + "/noise")

    def noise(self, offset: int = 0, limit: int = 100) -> Answer:
        """The noise bank: ``{"total", "offset", "pictures": [record]}``, most recently marked first."""
        return self._json("GET", "/api/v1/noise", params={"offset": offset, "limit": limit})

    # --- search -----------------------------------------------------------------------

    def search(self, data: bytes, top: int = 10, include_rejected: bool = False, name: str = "",
               domain: str | Iterable[str] | None = None) -> Answer:
        """Known pictures that are the same or nearly the same, best first:
        ``{"decision", "matches": [{"id", "name", "distance", "decision", ...}]}``. ``name`` is
        how the review queue names the query when a match is queued for review; ``domain`` (host
        or URL the picture was seen on, or several) adds brand verdicts:
        ``"verdict": "phishing-suspected"`` when one of them is not the brand's."""
        fields = [("top", str(top)), ("all", "true" if include_rejected else "false")]
        for value in [domain] if isinstance(domain, str) else domain or ():
            fields.append(("domain", value))
        return self._post_picture("/api/v1/search", data, name, fields)

    def events(self, after: str = "0-0", limit: int = 100) -> Answer:
        """Match events after position ``after``: ``{"events": [...], "next", "missed"}``; each event
        is a picture added with the earlier pictures it matched (read again from ``next``)."""
        return self._json("GET", "/api/v1/events", params={"after": after, "limit": limit})

    def compare(self, a: str, b: str) -> bytes:
        """PNG: stored picture ``b`` aligned onto stored picture ``a``, the differing regions marked."""
        return self._request("GET", "/api/v1/compare", params={"a": a, "b": b}).content

    def compare_picture(self, data: bytes, b: str, name: str = "") -> bytes:
        """PNG: stored picture ``b`` aligned onto the picture ``data`` (stores nothing)."""
        files = {"file": (name or "picture", data, "application/octet-stream")}
        return self._request("POST", "/api/v1/compare", data=[("b", b)], files=files).content

    def hash(self, data: bytes, name: str = "") -> Answer:
        """The picture's hashes as partners' tools write them (``POST /api/v1/hash``; stores nothing):
        ``{"file", "id", "hashes": {"pdq", "phash_dct_base64", ...}}``."""
        return self._post_picture("/api/v1/hash", data, name, [])

    def search_hashes(self, hashes: Mapping[str, str], top: int = 10,
                      include_rejected: bool = False, domain: str | Iterable[str] | None = None) -> Answer:
        """Known pictures near a partner's hashes (``{"pdq": "<64 hex>", "phash_dct_base64": ...}``),
        with no picture: ``{"decision", "evidence": "hashes-only", "compared", "matches"}``; the
        decision is at best ``to-review``. ``domain`` as for :meth:`search`."""
        body: dict[str, Any] = {"hashes": dict(hashes), "top": top, "all": include_rejected}
        if domain:
            body["domain"] = domain if isinstance(domain, str) else list(domain)
        return self._json("POST", "/api/v1/search/hashes", json=body)

    def import_hashes(self, text: str, fmt: str, hash_name: str | None = None,
                      tags: Iterable[str] = ()) -> Answer:
        """Store a partner's hash list (``fmt``: ``pdq-csv`` or ``lines``) as hash-only references:
        ``{"added", "duplicate", "failed", "results": [{"line", "id" | "error", ...}]}``."""
        body: dict[str, Any] = {"format": fmt, "list": text, "tags": list(tags)}
        if hash_name is not None:
            body["hash_name"] = hash_name
        return self._json("POST", "/api/v1/hashes", json=body)

    # --- batch jobs -------------------------------------------------------------------

    def submit(self, pictures: Iterable[tuple[str, bytes]], action: str = "search", top: int = 10,
               tags: Iterable[str] = (), metadata: Mapping | None = None,
               domain: str | Iterable[str] | None = None) -> str:
        """Queue a batch job over ``(name, bytes)`` pairs (``action`` ``search`` or ``add``); its id.
        ``domain``: for a search, where the pictures were seen (brand verdicts, as :meth:`search`)."""
        files = [("file", (name or "picture", data, "application/octet-stream")) for name, data in pictures]
        fields = [("action", action), ("top", str(top))] + [("tags", tag) for tag in tags]
        fields += [("domain", value) for value in ([domain] if isinstance(domain, str) else domain or ())]
        if metadata:
            fields.append(("metadata", json.dumps(dict(metadata))))
        return str(self._json("POST", "/api/v1/jobs", data=fields, files=files)["job"])

    def job_status(self, job: str) -> Answer:
        return self._json("GET", "/api/v1/jobs/" + job)

    def wait(self, job: str, timeout: float = 600.0, interval: float = 0.5) -> Answer:
        """Poll a job until it is ``done`` or ``failed`` (growing intervals, seconds); its state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.job_status(job)
            if state.get("status") in ("done", "failed"):
                return state
            if time.monotonic() > deadline:
                raise JobTimeout(f"job {job} still {state.get('status')} after {timeout:g} s")
            time.sleep(interval)
            interval = min(interval * 1.5, 5.0)

    def job(self, pictures: Iterable[tuple[str, bytes]], action: str = "search", top: int = 10,
            tags: Iterable[str] = (), timeout: float = 600.0) -> Answer:
        """Submit a batch job and wait for it: the job's state with per-file ``results``."""
        return self.wait(self.submit(pictures, action, top, tags), timeout)

    # --- browse and review -------------------------------------------------------------

    def clusters(self) -> list[Answer]:
        return list(self._json("GET", "/api/v1/clusters")["clusters"])

    def cluster(self, cluster_id: int | str, offset: int = 0, limit: int = 1000) -> Answer:
        """A cluster with its members from ``offset`` on (oldest first), at most ``limit``."""
        params = {"offset": offset, "limit": limit}
        return self._json("GET", "/api/v1/clusters/" + str(cluster_id), params=params)

    def graph(self, offset: int = 0, limit: int = 300) -> Answer:
        """A page of the graph: whole clusters from rank ``offset``, at most ``limit`` pictures."""
        return self._json("GET", "/api/v1/graph", params={"offset": offset, "limit": limit})

    def export(self, fmt: str = "json") -> Answer:
        return self._json("GET", "/api/v1/export", params={"format": fmt})

    def reviews(self, status: str = "pending", limit: int = 50, offset: int = 0) -> Answer:
        """Review items: pending ones oldest first, or ``done`` ones newest first."""
        params = {"status": status, "limit": limit, "offset": offset}
        return self._json("GET", "/api/v1/review", params=params)

    def review(self, item: str) -> Answer:
        return self._json("GET", "/api/v1/review/" + item)

    def judge(self, item: str, verdict: str) -> Answer:
        """An analyst's verdict on a review item: ``accepted``, ``rejected`` or ``noise`` (the pair's
        stored pictures go to the noise bank)."""
        return self._json("POST", "/api/v1/review/" + item, json={"verdict": verdict})

    def labels(self) -> list[Answer]:
        """The analysts' verdicts as a labelled list (what ``quaid calibrate --review`` fits)."""
        return list(self._json("GET", "/api/v1/review/labels")["labels"])

    # --- brands -----------------------------------------------------------------------

    def brands(self) -> list[Answer]:
        """Every brand with its own registrable domains: ``[{"name", "domains"}]``."""
        return list(self._json("GET", "/api/v1/brands")["brands"])

    def brand(self, name: str) -> Answer:
        return self._json("GET", "/api/v1/brands/" + quote(name, safe=""))

    def set_brand(self, name: str, domains: Iterable[str]) -> Answer:
        """Replace a brand's own domains (host names or URLs; kept as registrable domains)."""
        return self._json("PUT", "/api/v1/brands/" + quote(name, safe=""), json={"domains": list(domains)})

    def delete_brand(self, name: str) -> Answer:
        return self._json("DELETE", "/api/v1/brands/" + quote(name, safe=""))

    def openapi(self) -> Answer:
        """The service's OpenAPI document."""
        return self._json("GET", "/api/v1/openapi.json")

    def status(self) -> Answer:
        """``GET /status`` (ready check); raises :class:`ServiceUnavailable` when not ready."""
        return self._json("GET", "/status")

    # --- plumbing ---------------------------------------------------------------------

    def _post_picture(self, path: str, data: bytes, name: str, fields: list[tuple[str, str]]) -> Answer:
        files = {"file": (name or "picture", data, "application/octet-stream")}
        return self._json("POST", path, data=fields, files=files)

    def _json(self, method: str, path: str, **kwargs: Any) -> Answer:
        response = self._request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            status = response.status_code
            raise BadAnswer(f"HTTP {status}: answer is not a JSON object", status)
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP call; an error status or no answer raises the matching :class:`ServiceError`."""
        timeout = self._timeout()
        try:
            response = self.session.request(method, self.url + path, timeout=timeout, **kwargs)
        except requests.Timeout as exc:
            waited = _seconds(timeout, connecting=isinstance(exc, requests.ConnectTimeout))
            if self.left() <= LAST_CALL:  # the deadline ran out, not the call's own timeout
                waited = f"{self.budget:g}"
            raise ServiceUnavailable(f"quaid service at {self.url} did not answer within {waited} s") \
                from None
        except requests.ConnectionError:
            raise ServiceUnavailable(f"quaid service at {self.url} is unreachable") from None
        except requests.RequestException as exc:
            raise ServiceUnavailable(f"quaid request to {self.url} failed: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise error_for_status(response.status_code, _reason(response))
        return response

    def _timeout(self) -> Timeout:
        """This call's timeout: the client's, cut to the time left before the deadline."""
        if self.deadline is None:
            return self.timeout
        left = self.left()
        if left <= LAST_CALL:
            raise ServiceUnavailable(f"quaid service at {self.url} did not answer within {self.budget:g} s")
        connect, read = self.timeout if isinstance(self.timeout, tuple) else (self.timeout, self.timeout)
        return (min(connect, left), min(read, left))


def _reason(response: requests.Response) -> str:
    """The service's ``{"error": ...}`` on one line, else the status line's reason."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = body.get("error") if isinstance(body, dict) else None
    text = str(reason or response.reason or "").strip()
    return text.splitlines()[0] if text else ""


def _seconds(timeout: Timeout, connecting: bool) -> str:
    """The timeout that ran out: the connect or the read one of a (connect, read) pair."""
    if isinstance(timeout, tuple):
        timeout = timeout[0] if connecting else timeout[1]
    return f"{timeout:g}"


def _pictures_under(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in PICTURE_SUFFIXES:
            yield path


def _session(retries: int, backoff: float) -> requests.Session:
    """A session that reconnects when the connection is refused, and never resends a sent request."""
    session = requests.Session()
    # read=False: an error after the request went out (a timeout, a reset) is raised as it is,
    # neither retried nor wrapped into a connection error.
    retry = Retry(total=retries, connect=retries, read=False, status=0, backoff_factor=backoff)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session

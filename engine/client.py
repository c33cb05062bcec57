"""Python client of the quaid service (``quaid serve``), on :mod:`requests`.

Where to start::

    from engine.client import QuaidClient
    client = QuaidClient("http://127.0.0.1:8080", api_key=None)
    client.add("phish.png", tags=["misp:event=42"])         # {"id", "name", "status", "cluster"}
    client.search("new.png")["decision"]                    # accepted / to-review / rejected
    client.add_folder("screenshots/")                        # {file name: id}, like douglas-quaid's
                                                             # `upload -o mapping.json`
    client.job(["a.png", "b.png"], action="search")         # submit a batch and wait for its results

Every call has a timeout. Failures raise exceptions that say why in one line:
the service's own errors come back as the :mod:`engine.errors` class of their
HTTP status (``NotFound``, ``NotAPicture``, ``PictureTooLarge``, ``BadInput``,
``StoreUnavailable``), auth failures as :class:`Unauthorized` / :class:`Forbidden`,
and an unreachable service as :class:`ServiceUnreachable` — so code (and the
CLI's ``--server`` mode) handles local and remote errors the same way.
Imports nothing heavy: usable from MISP modules or AIL without numpy.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import requests

from engine.errors import BadInput, NotAPicture, NotFound, PictureTooLarge, QuaidError, StoreUnavailable

DEFAULT_TIMEOUT = 30.0  # seconds per HTTP call (MISP gives an enrichment 10 s: pass less there)
PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


class ClientError(QuaidError):
    """An error answered by the service that has no engine class (e.g. 500, 405)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = status or 500


class Unauthorized(QuaidError):
    """Missing or unknown API key (HTTP 401)."""

    http_status = 401


class Forbidden(QuaidError):
    """The API key may not do this, e.g. a read-only key adding (HTTP 403)."""

    http_status = 403


class ServiceUnreachable(StoreUnavailable):
    """No answer from the service (refused, timed out, connection reset)."""


class JobTimeout(QuaidError):
    """A batch job did not finish within the time given to :meth:`QuaidClient.job`."""

    http_status = 504


_BY_STATUS: dict[int, type[QuaidError]] = {
    400: BadInput, 401: Unauthorized, 403: Forbidden, 404: NotFound, 413: PictureTooLarge,
    415: NotAPicture, 503: StoreUnavailable,
}

Source = str | os.PathLike | bytes


class QuaidClient:
    """A session with one quaid service. Thread-safe enough for one thread per client."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["X-Quaid-Request"] = "1"  # writes without it are refused (browser guard)
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    # --- pictures ---------------------------------------------------------------------

    def add(self, source: Source, name: str | None = None, tags: Iterable[str] = (),
            metadata: Mapping | None = None) -> dict:
        """Add one picture (path or bytes); ``status`` is ``added`` or ``duplicate``."""
        data, default_name = _read(source)
        form: dict = {"name": name if name is not None else default_name, "tags": list(tags)}
        if metadata is not None:
            form["metadata"] = json.dumps(dict(metadata))
        return self._call("POST", "/api/v1/pictures", data=form, files={"file": (default_name, data)})

    def add_folder(self, folder: str | os.PathLike, tags: Iterable[str] = (),
                   errors: dict[str, str] | None = None) -> dict[str, str]:
        """Add every picture under ``folder`` (recursive); returns {relative file name: id}.

        A file the service refuses does not stop the others; its reason goes to
        ``errors`` (file name -> one-line reason) when a dict is given.
        """
        root = Path(folder)
        mapping: dict[str, str] = {}
        for path in _pictures_under(root):
            key = str(path.relative_to(root))
            try:
                mapping[key] = self.add(path, name=path.name, tags=tags)["id"]
            except (BadInput, NotAPicture, PictureTooLarge) as exc:
                if errors is not None:
                    errors[key] = str(exc)
        return mapping

    def get(self, picture_id: str) -> dict:
        return self._call("GET", f"/api/v1/pictures/{picture_id}")

    def image(self, picture_id: str) -> bytes:
        """The stored bytes or thumbnail."""
        return self._call("GET", f"/api/v1/pictures/{picture_id}/image", raw=True)

    def update(self, picture_id: str, tags: Iterable[str] | None = None,
               metadata: Mapping | None = None) -> dict:
        body: dict = {}
        if tags is not None:
            body["tags"] = list(tags)
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self._call("PATCH", f"/api/v1/pictures/{picture_id}", json=body)

    def delete(self, picture_id: str) -> dict:
        return self._call("DELETE", f"/api/v1/pictures/{picture_id}")

    # --- search, jobs -----------------------------------------------------------------

    def search(self, source: Source, top: int = 10, include_rejected: bool = False) -> dict:
        """``{"decision", "matches": [...]}``, the same object as ``quaid search --json``."""
        data, name = _read(source)
        form = {"top": str(top), "all": "true" if include_rejected else "false"}
        return self._call("POST", "/api/v1/search", data=form, files={"file": (name, data)})

    def submit(self, sources: Iterable[Source], action: str = "search", top: int = 10,
               tags: Iterable[str] = ()) -> str:
        """Queue a batch job; returns its id."""
        files = [("file", (name, data)) for data, name in map(_read, sources)]
        form = {"action": action, "top": str(top), "tags": list(tags)}
        return self._call("POST", "/api/v1/jobs", data=form, files=files)["job"]

    def job_status(self, job: str) -> dict:
        return self._call("GET", f"/api/v1/jobs/{job}")

    def wait(self, job: str, timeout: float = 600.0, interval: float = 0.5) -> dict:
        """Poll a job until it is done or failed (with growing intervals); returns its state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.job_status(job)
            if state["status"] in ("done", "failed"):
                return state
            if time.monotonic() > deadline:
                raise JobTimeout(f"job {job} still {state['status']} after {timeout:.0f} s")
            time.sleep(interval)
            interval = min(interval * 1.5, 5.0)

    def job(self, sources: Iterable[Source], action: str = "search", top: int = 10,
            tags: Iterable[str] = (), timeout: float = 600.0) -> dict:
        """Submit a batch job and wait for it: the job state with per-file ``results``."""
        return self.wait(self.submit(sources, action, top, tags), timeout)

    # --- browse -----------------------------------------------------------------------

    def clusters(self) -> list[dict]:
        return self._call("GET", "/api/v1/clusters")["clusters"]

    def cluster(self, cluster_id: int | str) -> dict:
        return self._call("GET", f"/api/v1/clusters/{cluster_id}")

    def export(self, fmt: str = "json") -> dict:
        return self._call("GET", "/api/v1/export", params={"format": fmt})

    def reviews(self, status: str = "pending", limit: int = 50, offset: int = 0) -> dict:
        params = {"status": status, "limit": limit, "offset": offset}
        return self._call("GET", "/api/v1/review", params=params)

    def judge(self, item: str, verdict: str) -> dict:
        return self._call("POST", f"/api/v1/review/{item}", json={"verdict": verdict})

    def labels(self) -> list[dict]:
        """The analysts' verdicts as a labelled list (what ``quaid calibrate`` reads)."""
        return self._call("GET", "/api/v1/review/labels")["labels"]

    def status(self) -> dict:
        """``/status``; raises :class:`StoreUnavailable` when the service is not ready."""
        return self._call("GET", "/status")

    # --- plumbing ---------------------------------------------------------------------

    def _call(self, method: str, path: str, raw: bool = False, **kwargs: object) -> dict | bytes:
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise ServiceUnreachable(f"{method} {path}: no answer within {self.timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise ServiceUnreachable(f"cannot reach quaid at {self.url}: {_reason(exc)}") from None
        if response.status_code >= 400:
            raise _error(response)
        if raw:
            return response.content
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"{method} {path}: answer is not JSON", response.status_code) from None


def _error(response: requests.Response) -> QuaidError:
    try:
        message = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        message = response.text.strip().splitlines()[0] if response.text.strip() else response.reason
    cls = _BY_STATUS.get(response.status_code)
    if cls is None:
        return ClientError(f"HTTP {response.status_code}: {message}", response.status_code)
    return cls(message)


def _read(source: Source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "picture"
    path = Path(source)
    try:
        return path.read_bytes(), path.name
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None


def _pictures_under(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        raise BadInput(f"not a folder: {root}")
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in PICTURE_SUFFIXES:
            yield path


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.rsplit(": ", 1)[-1][:200] if text else type(exc).__name__


class RemoteResult:
    """A JSON answer with attribute access, shaped like the facade's result objects."""

    def __init__(self, data: dict) -> None:
        self._data = data

    def __getattr__(self, name: str) -> object:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_json(self) -> dict:
        return dict(self._data)


class RemoteQuaid:
    """The part of :class:`engine.core.Quaid` that ``quaid add/search --server URL`` use, over HTTP.

    The API key comes from ``api_key`` or ``$QUAID_API_KEY``.
    """

    def __init__(self, url: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.client = QuaidClient(url, api_key or os.environ.get("QUAID_API_KEY"), timeout)

    def add(self, data: bytes, name: str = "", tags: Iterable[str] = (),
            metadata: Mapping | None = None) -> RemoteResult:
        return RemoteResult(self.client.add(data, name=name, tags=tags, metadata=metadata))

    def search(self, data: bytes, top: int = 10, include_rejected: bool = False) -> RemoteResult:
        return RemoteResult(self.client.search(data, top=top, include_rejected=include_rejected))

    def close(self) -> None:
        self.client.session.close()

    def __enter__(self) -> RemoteQuaid:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

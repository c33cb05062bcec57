"""Captures of a Lookyloo instance, read through Lookyloo's own client (PyLookyloo).

Where to start: :class:`LookylooSource` answers what ``quaid lookyloo-import`` needs: the
recent captures' UUIDs, one capture's URL, time and landing page, its screenshot. What
Lookyloo answers (Lookyloo 1.40, ``website/web/genericapi.py``):

- ``/json/recent_captures/<since>``: UUIDs newest first; only the captures listed on the
  index unless an API key is given (``Authorization`` header, PyLookyloo's ``init_apikey``);
- ``/json/<uuid>/info``: ``url``, ``title``, ``capture_time`` (ISO 8601), or 404 ``{"error"}``;
- ``/json/<uuid>/redirects``: ``{"response": {"url", "redirects": [...]}}``, the URLs the
  capture was redirected through, the landing page (the one in the screenshot) last;
- ``/bin/<uuid>/screenshot``: the PNG, or 404 ``{"error"}``. PyLookyloo hands back the body
  whatever the status, so a body that is not a PNG is read as Lookyloo's error.

PyLookyloo sets no timeout on its requests; this module mounts adapters that do, so a
stalled instance fails the import instead of hanging it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from engine.errors import QuaidError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_TIMEOUT = 30.0  # seconds for one request to Lookyloo (a full-page PNG can be several MB)
MAX_TEXT = 2000  # characters kept of a capture's URL or title (they come from the captured page)


class LookylooUnavailable(QuaidError):
    """The instance does not answer, or answers something that is not Lookyloo's API."""


class CaptureFailed(QuaidError):
    """One capture cannot be imported (unknown, no screenshot, broken): it fails alone."""


@dataclass(frozen=True)
class CaptureInfo:
    uuid: str
    url: str  # as submitted
    title: str
    capture_time: str
    landing_url: str  # where the redirects ended: the page in the screenshot


class LookylooSource:
    """One Lookyloo instance at ``url`` (``api_key``: see all captures, not only listed ones)."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        try:
            from pylookyloo import Lookyloo
        except ImportError:
            raise QuaidError("lookyloo-import needs PyLookyloo: pip install 'quaid[lookyloo]'") from None
        self.api = Lookyloo(url)
        adapter = _TimeoutAdapter(timeout, max_retries=Retry(total=3, backoff_factor=0.2,
                                                             status_forcelist=[502, 503, 504]))
        self.api.session.mount("http://", adapter)
        self.api.session.mount("https://", adapter)
        if api_key:
            self.api.init_apikey(apikey=api_key)

    @property
    def root_url(self) -> str:
        return self.api.root_url

    def recent(self, since: datetime | None = None) -> list[str]:
        """UUIDs of the captures since ``since`` (Lookyloo's default: the last day), oldest first."""
        try:
            answer = self.api.get_recent_captures(since)
        except (requests.RequestException, ValueError) as exc:
            raise LookylooUnavailable(f"{self.root_url}: no list of recent captures "
                                      f"({_short(exc)})") from None
        if not isinstance(answer, list) or not all(isinstance(u, str) for u in answer):
            raise LookylooUnavailable(f"{self.root_url}: the recent captures are not a list of UUIDs")
        return list(reversed(answer))

    def info(self, capture: str) -> CaptureInfo:
        answer = self._call(self.api.get_info, capture)
        if not isinstance(answer, dict) or not isinstance(answer.get("url"), str):
            reason = answer.get("error") if isinstance(answer, dict) else None
            raise CaptureFailed(f"no capture information: {str(reason or answer)[:200]}")
        url = answer["url"][:MAX_TEXT]
        return CaptureInfo(capture, url, str(answer.get("title", ""))[:MAX_TEXT],
                           str(answer.get("capture_time", ""))[:40], self._landing(capture) or url)

    def _landing(self, capture: str) -> str | None:
        """The last URL of the capture's redirects; None when there were none (or no answer:
        the submitted URL then stands for the page)."""
        try:
            answer = self._call(self.api.get_redirects, capture)
        except CaptureFailed:
            return None
        chain = (answer.get("response") or {}).get("redirects") if isinstance(answer, dict) else None
        if isinstance(chain, list) and chain and isinstance(chain[-1], str):
            return chain[-1][:MAX_TEXT]
        return None

    def screenshot(self, capture: str) -> bytes:
        data = self._call(self.api.get_screenshot, capture).getvalue()
        if not data.startswith(PNG_SIGNATURE):
            raise CaptureFailed(f"no screenshot: {_lookyloo_error(data)}")
        return data

    def _call(self, method: Any, capture: str) -> Any:
        try:
            return method(capture)
        except (requests.RequestException, ValueError) as exc:  # ValueError: a body that is not JSON
            raise CaptureFailed(_short(exc)) from None


class _TimeoutAdapter(HTTPAdapter):
    """An adapter giving every request a timeout unless the caller set one."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def _lookyloo_error(body: bytes) -> str:
    """Lookyloo's ``{"error": ...}`` (or flask-restx's ``{"message": ...}``) in a body, else its size."""
    try:
        parsed = json.loads(body[:10_000])
    except (ValueError, UnicodeDecodeError):
        return f"{len(body)} bytes that are not a PNG"
    if isinstance(parsed, dict):
        return str(parsed.get("error") or parsed.get("message") or parsed)[:200]
    return str(parsed)[:200]


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"

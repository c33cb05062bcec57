"""API keys: ``Authorization: Bearer <key>``, read-only and read-write.

Keys are configured server-side (``Settings.read_keys`` / ``Settings.write_keys``,
e.g. ``QUAID_WRITE_KEYS=k1,k2``). Rules:

* no key configured and bound to loopback: the API is open (a laptop install);
* any key configured: every ``/api/v1`` call needs one; a read key may read and
  search, a write key may also add, change, delete and give review verdicts;
* bound to anything but loopback with no key: :func:`check_bind` refuses to
  start, so a service is never exposed without authentication by accident.

Each view declares what it needs with :func:`requires`; a view that declares
nothing needs a write key (fail closed). Refused requests are logged with the
client address, method, path and reason, never with the key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Callable
from enum import IntEnum
from typing import TypeVar

from flask import Flask, Response, current_app, request

from engine.config import Settings
from engine.errors import QuaidError
from engine.service.errors import error_response

log = logging.getLogger("quaid.service.auth")

F = TypeVar("F", bound=Callable)


class Access(IntEnum):
    """What a key may do; a higher level includes the lower ones."""

    NONE = 0
    READ = 1
    WRITE = 2


class UnsafeBind(QuaidError):
    """Refusal to serve on a non-loopback address without API keys."""

    http_status = 500


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for 0.0.0.0, names, LAN addresses."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Raise :class:`UnsafeBind` when ``settings.host`` is not loopback and no key is configured."""
    if not is_loopback(settings.host) and not (settings.read_keys or settings.write_keys):
        raise UnsafeBind(
            f"refusing to serve on {settings.host} without API keys: set QUAID_WRITE_KEYS "
            "(and optionally QUAID_READ_KEYS), or bind to 127.0.0.1"
        )


def requires(level: Access) -> Callable[[F], F]:
    """Decorator declaring the access a view needs (read for lookups and searches)."""

    def mark(view: F) -> F:
        view.quaid_access = level  # type: ignore[attr-defined]
        return view

    return mark


class KeyRing:
    """The configured keys; compares in constant time (:func:`hmac.compare_digest`)."""

    def __init__(self, read_keys: tuple[str, ...], write_keys: tuple[str, ...]) -> None:
        self._read = tuple(k.encode() for k in read_keys)  # blank keys are refused by the settings
        self._write = tuple(k.encode() for k in write_keys)

    @property
    def enabled(self) -> bool:
        return bool(self._read or self._write)

    def access(self, key: str) -> Access:
        """The access ``key`` grants (every key is compared, so timing does not tell which matched)."""
        candidate = key.encode()
        write = any([hmac.compare_digest(candidate, k) for k in self._write])
        read = any([hmac.compare_digest(candidate, k) for k in self._read])
        return Access.WRITE if write else Access.READ if read else Access.NONE


class Forbidden(QuaidError):
    """The key is valid but does not allow this action."""

    http_status = 403


def require_access(needed: Access) -> None:
    """Inside a view: raise :class:`Forbidden` unless the request's key grants ``needed``.

    For views whose need depends on the request (a batch job that adds needs a
    write key, one that searches a read key).
    """
    keys: KeyRing = current_app.extensions["quaid_keys"]
    if not keys.enabled:
        return
    if keys.access(_bearer()) < needed:
        _log_refusal("this API key is read-only", 403)
        raise Forbidden("this API key is read-only")


def caller_id() -> str:
    """Who sent the request, for per-caller quotas: a hash of its API key (never the key itself),
    or ``anonymous`` when the service runs without keys."""
    key = _bearer() if current_app.extensions["quaid_keys"].enabled else ""
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else "anonymous"


def install(app: Flask, settings: Settings) -> None:
    """Check every request to a view that declares (or defaults to) an access level."""
    app.extensions["quaid_keys"] = KeyRing(settings.read_keys, settings.write_keys)
    app.before_request(_authorise)


def _authorise() -> Response | None:
    keys: KeyRing = current_app.extensions["quaid_keys"]
    view = current_app.view_functions.get(request.endpoint or "")
    if not keys.enabled or view is None:
        return None  # open service, or unknown route (404 handled elsewhere)
    needed = getattr(view, "quaid_access", Access.WRITE)
    if needed == Access.NONE:
        return None
    key = _bearer()
    if not key:
        return _refuse(401, "missing API key: send 'Authorization: Bearer <key>'")
    granted = keys.access(key)
    if granted == Access.NONE:
        return _refuse(401, "unknown API key")
    if granted < needed:
        return _refuse(403, "this API key is read-only")
    return None


def _bearer() -> str:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def _log_refusal(reason: str, status: int) -> None:
    log.warning("refused %s %s from %s: %s (%d)", request.method, request.path,
                request.remote_addr, reason, status)


def _refuse(status: int, reason: str) -> Response:
    _log_refusal(reason, status)
    headers = {"WWW-Authenticate": 'Bearer realm="quaid"'} if status == 401 else None
    return error_response(status, reason, headers)

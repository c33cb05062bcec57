"""Refuse what a web page open in the analyst's browser could make the browser send to quaid.

Why: analysts run quaid next to the browser in which they open the phishing pages quaid
correlates, and with no key configured (the loopback default) the API is open to anything
that reaches it. Three checks, before the API keys are looked at:

* **Host allowlist** (421): loopback addresses, ``localhost``, the bound address and
  ``Settings.public_hosts``. A DNS-rebinding page reaches quaid under its own host name, so
  it is refused here whatever it sends.
* **Origin** (403): a request whose ``Origin`` is not quaid's own (nor one of
  ``Settings.cors_origins``), or that the browser marks ``Sec-Fetch-Site: cross-site`` or
  ``same-site``, is refused. Only a plain navigation to the web UI's page and files, which
  hold no data, is let through.
* **Writes a page cannot forge** (403): every method but GET/HEAD/OPTIONS needs the header
  ``X-Quaid-Request`` or a JSON body. A cross-site form or a ``no-cors`` fetch can send
  neither (they are not "CORS-safelisted", Fetch standard section 2.2.2), so this holds even
  in a browser that sends no ``Origin`` or ``Sec-Fetch-Site``.

CORS is closed unless ``cors_origins`` names an origin: then that origin (and no other) may
call the API from a page, with its own API key. Every answer carries
``Cross-Origin-Resource-Policy: same-origin`` and ``nosniff``, so no other page can embed a
picture or an export as an image or a script.
"""

from __future__ import annotations

import ipaddress
import logging

from flask import Flask, Response, current_app, request

from engine.config import Settings
from engine.service.errors import error_response

log = logging.getLogger("quaid.service.guard")

HEADER = "X-Quaid-Request"  # what quaid's own clients and web UI send with every write
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PAGES = frozenset({"ui.index", "ui.asset"})  # data-free pages a link from anywhere may open
FOREIGN_SITES = frozenset({"cross-site", "same-site"})
CORS_METHODS = "GET, POST, PATCH, DELETE"
CORS_HEADERS = f"Authorization, Content-Type, {HEADER}"
CORS_MAX_AGE = "600"  # seconds a browser may cache a preflight answer


class Guard:
    """The host names and origins one service accepts."""

    def __init__(self, settings: Settings) -> None:
        names = (*settings.public_hosts, settings.host)
        self.hosts = frozenset(_normal(h) for h in names if not _wildcard(h))
        self.cors_origins = frozenset(o.rstrip("/").lower() for o in settings.cors_origins)

    def host_allowed(self, host: str) -> bool:
        name = _normal(_host_name(host))
        return name in self.hosts or _is_loopback_name(name)

    def cors_allowed(self, origin: str) -> bool:
        return origin.rstrip("/").lower() in self.cors_origins


def install(app: Flask, settings: Settings) -> None:
    """Check every request first (before the API keys) and mark every answer."""
    app.extensions["quaid_guard"] = Guard(settings)
    app.before_request(check_request)
    app.after_request(mark_response)


def check_request() -> Response | None:
    """The checks of this module, in order; None lets the request on to the API keys."""
    guard: Guard = current_app.extensions["quaid_guard"]
    if not guard.host_allowed(request.host):
        name = _host_name(request.host)[:80]
        return _refuse(421, f"host name {name!r} not served here: add it to public_hosts "
                            "(QUAID_PUBLIC_HOSTS) if quaid should answer to it")
    origin = request.headers.get("Origin", "")
    trusted = bool(origin) and guard.cors_allowed(origin)
    if trusted and _is_preflight():
        return _preflight()
    if request.endpoint in OPEN_PAGES and request.method in SAFE_METHODS:
        return None
    if origin and not trusted and not _same_origin(origin, request.host):
        return _refuse(403, "cross-origin request refused (Origin is not this service)")
    if not trusted and request.headers.get("Sec-Fetch-Site", "").lower() in FOREIGN_SITES:
        return _refuse(403, "cross-site request refused (Sec-Fetch-Site)")
    # Even from a configured origin: a form on one of its pages must not change anything.
    if request.method not in SAFE_METHODS and not (request.headers.get(HEADER) or request.is_json):
        return _refuse(403, f"send the header '{HEADER}: 1' (or a JSON body) with every change: "
                            "requests a web page could forge are refused")
    return None


def mark_response(response: Response) -> Response:
    """Forbid embedding by other sites and MIME sniffing; open CORS to configured origins only."""
    response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    origin = request.headers.get("Origin", "")
    guard: Guard | None = current_app.extensions.get("quaid_guard")
    if origin and guard is not None and guard.cors_allowed(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Location, Retry-After"
        response.vary.add("Origin")
    return response


def _is_preflight() -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def _preflight() -> Response:
    response = Response(status=204)
    response.headers.update({"Access-Control-Allow-Methods": CORS_METHODS,
                             "Access-Control-Allow-Headers": CORS_HEADERS,
                             "Access-Control-Max-Age": CORS_MAX_AGE})
    return response


def _same_origin(origin: str, host: str) -> bool:
    """``Origin`` names the host the request was sent to (port included; default ports implied)."""
    scheme, sep, rest = origin.lower().partition("://")
    if not sep or scheme not in ("http", "https"):
        return False  # "null" (sandboxed frames, file: pages, redirects) and anything odd
    default = "443" if scheme == "https" else "80"  # behind a TLS proxy, Host has no port either
    return _with_port(rest, default) == _with_port(host.lower(), default)


def _with_port(host: str, default: str) -> str:
    name = _host_name(host)
    port = host[len(name):].lstrip(":") or default
    return f"{name}:{port}"


def _host_name(host: str) -> str:
    """``host`` without its port: ``[::1]:8080`` -> ``[::1]``, ``localhost:80`` -> ``localhost``."""
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rpartition(":")[0] if ":" in host else host


def _normal(name: str) -> str:
    return name.strip().lower().rstrip(".").strip("[]")


def _wildcard(host: str) -> bool:
    return _normal(host) in ("", "0.0.0.0", "::")


def _is_loopback_name(name: str) -> bool:
    """``localhost`` and loopback IP literals (an IP literal cannot be rebound by DNS)."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _refuse(status: int, reason: str) -> Response:
    log.warning("refused %s %s from %s (Host %r, Origin %r): %s", request.method, request.path,
                request.remote_addr, request.host[:100], request.headers.get("Origin", "")[:100], reason)
    return error_response(status, reason)

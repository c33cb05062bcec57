"""The one error hierarchy of :class:`quaid_client.QuaidClient`: the class says what to do with the work.

* :class:`ServiceUnavailable` — no answer, a timeout, 5xx, 429: try again later;
* :class:`AuthError` — 401/403, a wrong or read-only API key: keep the work, an operator
  must fix the key (retrying later is right too, but it is not the service's fault);
* :class:`RequestRefused` — any other 4xx (not a picture, too large, bad field): this
  request will never succeed, drop it;
* :class:`BadAnswer` — a 2xx that is not a JSON object (a proxy page, say).

``str(error)`` is one line; ``status`` is the HTTP status (None when nothing answered) and
``reason`` the service's own ``{"error": ...}`` text ("" when it gave none), for callers that
word the failure for their own users (the MISP modules do).
"""

from __future__ import annotations


class ServiceError(Exception):
    """The quaid service could not be used for this request."""

    transient = False  # whether the same request may succeed later without anyone's help

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ServiceUnavailable(ServiceError):
    """Unreachable, timed out, overloaded (429) or failing (5xx): try again later."""

    transient = True


class AuthError(ServiceError):
    """401/403: the API key is missing, wrong or may not do this. Keep the work; fix the key."""


class RequestRefused(ServiceError):
    """Another 4xx: this request is wrong (not a picture, too large, bad field) and stays wrong."""


class BadAnswer(ServiceError):
    """A success status whose body is not what the API documents (not a JSON object, say)."""


class JobTimeout(ServiceUnavailable):
    """A batch job was not finished within the time :meth:`QuaidClient.wait` was given."""


def error_for_status(status: int, reason: str) -> ServiceError:
    """The :class:`ServiceError` of an HTTP error status; ``reason`` is the service's text, if any."""
    message = f"HTTP {status}: {reason or 'error'}"
    if status in (401, 403):
        return AuthError(message, status, reason)
    if status == 429 or status >= 500:
        return ServiceUnavailable(message, status, reason)
    return RequestRefused(message, status, reason)

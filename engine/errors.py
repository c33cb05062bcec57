"""Exception types that the CLI and the HTTP API turn into clear errors.

Every error quaid raises on purpose derives from :class:`QuaidError` and carries
a one-line reason (``str(exc)``) and the HTTP status the API answers with.
"""


class QuaidError(Exception):
    """Base of quaid's own errors; ``http_status`` is what the API answers."""

    http_status = 500


class BadInput(QuaidError):
    """Malformed request: bad JSON, bad parameter, missing file."""

    http_status = 400


class NotAPicture(QuaidError):
    """The bytes are not a picture quaid can decode (corrupt, truncated, other format)."""

    http_status = 415


class PictureTooLarge(QuaidError):
    """Too many pixels (decompression bomb) or too many bytes."""

    http_status = 413


class NotFound(QuaidError):
    """No picture, cluster or job with that id."""

    http_status = 404


class NotComparable(QuaidError):
    """The pictures have no stored feature to align (a hash-only reference, a store without ORB)."""

    http_status = 422


class StaleStore(QuaidError):
    """The store holds features extracted by another version of an algorithm (``quaid reindex``)."""

    http_status = 503


class StoreUnavailable(QuaidError):
    """Redis cannot be reached."""

    http_status = 503


class ServiceBusy(QuaidError):
    """The service is at capacity for now (all decoding budget in use); retry after ``retry_after`` s.

    503, not 429: the client did nothing wrong, the server is busy with other requests.
    """

    http_status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

"""The Python client of quaid's HTTP API: ``requests`` and the standard library only, Python >= 3.8.

Where to start::

    from quaid_client import QuaidClient, ServiceError
    with QuaidClient("http://127.0.0.1:8080", api_key="...", timeout=(5, 30), retries=3) as quaid:
        quaid.add(png_bytes, name="login.png", tags=["brand:example"])  # {"id", "name", "status", "cluster"}
        quaid.search(png_bytes, top=10)["decision"]                   # accepted / to-review / rejected
        quaid.add_folder("screenshots/")                               # {file name: id}
        quaid.job([("a.png", a), ("b.png", b)], action="search")       # a batch job, until done

It is the one client of the service: the CLI's ``--server`` mode, the MISP modules and
write-back, and the AIL connector all use it, so they share its timeouts, retries and errors
(:mod:`quaid_client.errors`). It runs where quaid's engine is not installed (AIL's virtualenv,
misp-modules' own environment), which is why it needs nothing but ``requests``.
"""

from quaid_client.client import DEFAULT_TIMEOUT, REQUEST_HEADER, QuaidClient
from quaid_client.errors import (
    AuthError,
    BadAnswer,
    JobTimeout,
    RequestRefused,
    ServiceError,
    ServiceUnavailable,
    error_for_status,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "REQUEST_HEADER",
    "AuthError",
    "BadAnswer",
    "JobTimeout",
    "QuaidClient",
    "RequestRefused",
    "ServiceError",
    "ServiceUnavailable",
    "error_for_status",
]

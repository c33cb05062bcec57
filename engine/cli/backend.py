"""Where the CLI's picture commands run: the local store, or a running service (``--server URL``).

Both sides answer the same two calls with the API's JSON, so ``quaid add``, ``quaid search``
and ``quaid ail-import`` are written once: :class:`LocalStore` wraps the engine facade, and
for ``--server`` the command talks to :class:`quaid_client.QuaidClient` directly (its ``add``
and ``search`` take the same arguments). A search queues its to-review matches in the store's
review queue on both sides (:func:`engine.review.search_and_record` locally; the service
runs the same function; a search by hashes through :func:`engine.review.search_hashes_and_record`),
so an analyst finds them in the web UI whichever way they came.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from engine.config import load_settings
from engine.review import ReviewQueue, search_and_record, search_hashes_and_record
from quaid_client import QuaidClient


class Backend(Protocol):
    def add(self, data: bytes, name: str = "", tags: Iterable[str] = (),
            metadata: Mapping | None = None) -> dict: ...

    def search(self, data: bytes, top: int = 10, include_rejected: bool = False, name: str = "",
               domain: str | list[str] | None = None) -> dict: ...

    def search_hashes(self, hashes: Mapping[str, str], top: int = 10,
                      include_rejected: bool = False, domain: str | list[str] | None = None) -> dict: ...

    def import_hashes(self, text: str, fmt: str, hash_name: str | None = None,
                      tags: Iterable[str] = ()) -> dict: ...


class LocalStore:
    """The local store through :class:`engine.core.Quaid`, answering like the API."""

    def __init__(self, quaid) -> None:
        self.quaid = quaid
        self.reviews = ReviewQueue(quaid.redis)

    def add(self, data: bytes, name: str = "", tags: Iterable[str] = (),
            metadata: Mapping | None = None) -> dict:
        return self.quaid.add(data, name=name, tags=tags, metadata=metadata).to_json()

    def search(self, data: bytes, top: int = 10, include_rejected: bool = False, name: str = "",
               domain: str | list[str] | None = None) -> dict:
        return search_and_record(self.quaid, self.reviews, data, name, top, include_rejected, domain)

    def search_hashes(self, hashes: Mapping[str, str], top: int = 10, include_rejected: bool = False,
                      domain: str | list[str] | None = None) -> dict:
        return search_hashes_and_record(self.quaid, self.reviews, hashes, top, include_rejected, domain)

    def import_hashes(self, text: str, fmt: str, hash_name: str | None = None,
                      tags: Iterable[str] = ()) -> dict:
        from engine.hash_import import import_list, import_summary, read_list

        return import_summary(import_list(self.quaid, read_list(text, fmt, hash_name), tags))


@contextmanager
def open_backend(server: str | None, api_key: str | None = None) -> Iterator[Backend]:
    """The service at ``server`` (API key: ``api_key`` or ``$QUAID_API_KEY``), else the local store."""
    if server:
        with QuaidClient(server, api_key or os.environ.get("QUAID_API_KEY")) as client:
            yield client
        return
    from engine.core import Quaid  # imported late: `quaid --help` must not need Redis

    with Quaid.open(load_settings()) as quaid:
        yield LocalStore(quaid)

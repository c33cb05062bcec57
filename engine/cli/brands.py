"""``quaid brand``: each brand's own domains, which make brand verdicts possible.

A picture added with ``--brand`` is that brand's baseline; a search with
``--domain`` then answers a match against it as ``legitimate`` when the domain
is one of the brand's (these, plus the baseline's own ``--domain``) and
``phishing-suspected`` otherwise (:mod:`engine.brands`).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from engine.errors import NotFound
from engine.validation import printable


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "brand", help="set, list or remove a brand's own domains",
        description="A brand's own domains: a page that looks like the brand's baseline is legitimate "
                    "there and phishing-suspected anywhere else (subdomains count as the domain).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    set_ = actions.add_parser("set", help="replace a brand's domains",
                              description="Replace a brand's own domains (host names or URLs).")
    set_.add_argument("name", metavar="BRAND")
    set_.add_argument("domains", nargs="+", metavar="DOMAIN")
    show = actions.add_parser("show", help="one brand's domains")
    show.add_argument("name", metavar="BRAND")
    actions.add_parser("list", help="every brand with its domains")
    delete = actions.add_parser("delete", help="remove a brand's domains (its baselines stay)")
    delete.add_argument("name", metavar="BRAND")
    for sub in (set_, show, actions.choices["list"], delete):
        sub.add_argument("--json", action="store_true", help="print JSON")
        sub.add_argument("--server", metavar="URL", help="go through a running `quaid serve` at URL "
                                                         "(API key from $QUAID_API_KEY)")
        sub.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with _registry(args.server) as registry:
        if args.action == "set":
            answer = registry.set(args.name, args.domains)
        elif args.action == "show":
            answer = registry.get(args.name)
        elif args.action == "delete":
            answer = registry.delete(args.name)
        else:
            answer = {"brands": registry.all()}
    if args.json:
        print(json.dumps(answer, ensure_ascii=False))
    elif "brands" in answer:
        for brand in answer["brands"]:
            print(_line(brand))
    else:
        print(_line(answer))
    return 0


def _line(brand: dict) -> str:
    if brand.get("status") == "deleted":
        return f"deleted {printable(brand['name'])}"
    return f"{printable(brand['name'])}: {' '.join(brand['domains'])}"


class _Local:
    """The registry of the local store, answering like the API (404 as :class:`NotFound`)."""

    def __init__(self, registry) -> None:
        self.registry = registry

    def set(self, name: str, domains: list[str]) -> dict:
        return self.registry.set(name, domains)

    def get(self, name: str) -> dict:
        found = self.registry.get(name)
        if found is None:
            raise NotFound(f"no brand {name[:100]!r} configured")
        return found

    def delete(self, name: str) -> dict:
        if not self.registry.delete(name):
            raise NotFound(f"no brand {name[:100]!r} configured")
        return {"name": name.strip(), "status": "deleted"}

    def all(self) -> list[dict]:
        return self.registry.all()


class _Remote:
    def __init__(self, client) -> None:
        self.client = client

    def set(self, name: str, domains: list[str]) -> dict:
        return self.client.set_brand(name, domains)

    def get(self, name: str) -> dict:
        return self.client.brand(name)

    def delete(self, name: str) -> dict:
        return self.client.delete_brand(name)

    def all(self) -> list[dict]:
        return self.client.brands()


@contextmanager
def _registry(server: str | None) -> Iterator[_Local | _Remote]:
    if server:
        from quaid_client import QuaidClient

        with QuaidClient(server, os.environ.get("QUAID_API_KEY")) as client:
            yield _Remote(client)
        return
    from engine.config import load_settings
    from engine.core import Quaid  # imported late: `quaid --help` must not need Redis

    with Quaid.open(load_settings()) as quaid:
        yield _Local(quaid.brands)

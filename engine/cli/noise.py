"""``quaid noise add|remove|list``: the noise bank from the command line (see :mod:`engine.noise`).

``add`` and ``remove`` take ids (locally also unique id prefixes); each id fails alone, with a
one-line reason on stderr, and the exit code is 1 at the end. With ``--server`` they go through a
running service (full ids; API key from ``$QUAID_API_KEY``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine.config import load_settings
from engine.errors import BadInput, QuaidError
from engine.validation import printable
from quaid_client import QuaidClient, ServiceError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "noise", help="the noise bank: pictures never reported as matches",
        description="Mark stored pictures as noise (blank, error, challenge, parked, placeholder pages: "
                    "never reported as matches, and a picture matching one is answered as noise), "
                    "take them out again, or list the bank.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("add", "Put pictures in the noise bank"), ("remove", "Take pictures out of it")):
        q = actions.add_parser(name, help=text.lower(), description=f"{text} (ids or unique id prefixes).")
        q.add_argument("ids", nargs="+", metavar="ID")
        _common(q)
        q.set_defaults(func=run_change)
    q = actions.add_parser("list", help="the noise bank's pictures, most recently marked first",
                           description="The noise bank's pictures, most recently marked first.")
    q.add_argument("--limit", type=int, default=100, metavar="N", help="at most N pictures (100)")
    q.add_argument("--offset", type=int, default=0, metavar="N", help="skip the first N")
    _common(q)
    q.set_defaults(func=run_list)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument("--server", metavar="URL",
                        help="go through a running `quaid serve` at URL (API key from $QUAID_API_KEY)")


def run_change(args: argparse.Namespace) -> int:
    failures = 0
    with _bank(args.server) as bank:
        change = bank.mark if args.action == "add" else bank.unmark
        for ident in args.ids:
            try:
                record = change(ident)
            except (QuaidError, ServiceError) as exc:
                failures += 1
                print(f"quaid noise {args.action}: {printable(ident)}: {exc}", file=sys.stderr)
                continue
            _print_record(args, record)
    return 1 if failures else 0


def run_list(args: argparse.Namespace) -> int:
    if args.limit < 1 or args.offset < 0:
        raise BadInput("--limit must be at least 1 and --offset at least 0")
    with _bank(args.server) as bank:
        page = bank.list(args.offset, args.limit)
    if args.json:
        for record in page["pictures"]:
            _print_json(record)
    else:
        for record in page["pictures"]:
            _print_record(args, record)
        print(f"{len(page['pictures'])} of {page['total']} noise pictures shown", file=sys.stderr)
    return 0


class _Bank:
    """``mark``, ``unmark`` (each answers the record as JSON) and ``list``, local or remote."""

    def __init__(self, mark: Callable[[str], dict], unmark: Callable[[str], dict],
                 listing: Callable[[int, int], dict]) -> None:
        self.mark, self.unmark, self.list = mark, unmark, listing


@contextmanager
def _bank(server: str | None) -> Iterator[_Bank]:
    if server:
        with QuaidClient(server, os.environ.get("QUAID_API_KEY")) as client:
            yield _Bank(client.mark_noise, client.unmark_noise, client.noise)
        return
    from engine.core import Quaid  # imported late: `quaid --help` must not need Redis

    with Quaid.open(load_settings()) as quaid:
        yield _Bank(lambda i: quaid.noise.mark(quaid.resolve(i)).to_json(),
                    lambda i: quaid.noise.unmark(quaid.resolve(i)).to_json(), quaid.noise.list)


def _print_record(args: argparse.Namespace, record: dict) -> None:
    if args.json:
        _print_json(record)
        return
    noise = record.get("noise")
    state = f"noise ({noise['reason']})" if noise else "not noise"
    print(f"{record['id']}  {state:<24} {printable(record.get('name', ''))}")


def _print_json(value: dict) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()

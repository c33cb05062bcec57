"""``quaid events [--after POSITION]``: the match events, one JSON object a line.

Each event is a picture added and the earlier pictures it matched (:mod:`engine.store.match_events`);
the position to read after next time goes to stderr, so a script can follow the stream:
``quaid events --after "$(cat pos)" > new.jsonl 2> pos.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from engine.cli.pictures import _add_server_option, _open_quaid
from engine.store.match_events import MAX_PAGE, START


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "events", help="pictures added and the earlier pictures they matched (JSON lines)",
        description="Print the match events after a position, oldest first, one JSON object a line: "
                    "a picture added and the earlier pictures it matched. The position to read after "
                    "next time is printed to stderr as 'next: <position>'.")
    parser.add_argument("--after", default=START, help="position of the last event read (default: 0-0)")
    parser.add_argument("--limit", type=int, default=MAX_PAGE, help=f"events at most (1-{MAX_PAGE})")
    _add_server_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.server:
        from quaid_client import QuaidClient

        with QuaidClient(args.server, os.environ.get("QUAID_API_KEY")) as client:
            page = client.events(args.after, args.limit)
    else:
        with _open_quaid() as quaid:
            page = quaid.events.read(args.after, args.limit)
    for event in page["events"]:
        print(json.dumps(event, ensure_ascii=False))
    if page["missed"]:
        print(f"quaid events: events after {args.after} were dropped before being read", file=sys.stderr)
    print(f"next: {page['next']}", file=sys.stderr)
    return 0

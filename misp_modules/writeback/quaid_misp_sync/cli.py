"""``quaid misp-sync``: the command line of the write-back.

    quaid misp-sync --url https://misp.example --key KEY [--event ID | --since DATE | --tag TAG | --follow]
                    [--state FILE] [--quaid http://127.0.0.1:8080] [--quaid-key KEY] [--public-url URL]
                    [--top N] [--distribution 0-3] [--tag-only] [--republish] [--other-orgs]
                    [--global-tags] [--attach-diff] [--dry-run]

``--follow`` records retroactive matches instead of searching selected events: the pictures
added to quaid since the last ``--follow`` run that match earlier pictures of MISP events are
recorded in those earlier events (:mod:`quaid_misp_sync.follow`); ``--state`` names the file
keeping the position reached (default ``$XDG_STATE_HOME/quaid/misp-sync.position``).

What reaches whom: everything written into an event that names another event gets the
narrowest distribution of the two events and ``--distribution`` (default 0, your organisation
only); ``--tag-only`` writes the decision tags and nothing that names the other event. Decision
tags are local tags unless ``--global-tags``. Only events created by the key's organisation are
written into unless ``--other-orgs``. MISP unpublishes an event on every object, reference or
global tag written into it; ``--republish`` publishes again the events that were published
before the run (off by default: publishing sends the event to every synchronised instance).
``--dry-run`` lists every write it would make and sends none.

Also runnable without the ``quaid`` command: ``python -m quaid_misp_sync ...`` with
``misp_modules/writeback`` on ``PYTHONPATH``. Keys can come from the environment
(``MISP_KEY``, ``QUAID_API_KEY``) so they stay out of shell history and process lists.
Progress bars go to stderr, the summary to stdout. Exit codes: 0 done, 1 done with errors on
some pictures, 2 the run could not start or stopped (MISP or quaid unreachable, bad options).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from quaid_misp_sync import DEFAULT_TOP
from quaid_misp_sync.policy import LEVEL_NAMES, ORG_ONLY, WritePolicy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options, for this module's parser and for ``quaid``'s sub-command parser."""
    parser.add_argument("--url", required=True, help="MISP base URL")
    parser.add_argument("--key", default=os.environ.get("MISP_KEY"), help="MISP API key (default: $MISP_KEY)")
    parser.add_argument("--event", help="one event, by id or uuid")
    parser.add_argument("--since", help="events dated on or after YYYY-MM-DD")
    parser.add_argument("--tag", help="events carrying this tag")
    parser.add_argument(
        "--follow",
        action="store_true",
        help="record the matches of pictures added to quaid since the last --follow run in the earlier "
        "events they match (instead of selecting events)",
    )
    parser.add_argument(
        "--state", type=Path, default=default_state(), help="where --follow keeps its position"
    )
    parser.add_argument(
        "--quaid",
        default=os.environ.get("QUAID_URL", "http://127.0.0.1:8080"),
        help="quaid service URL (default: $QUAID_URL or http://127.0.0.1:8080)",
    )
    parser.add_argument(
        "--quaid-key",
        default=os.environ.get("QUAID_API_KEY", ""),
        help="quaid read-write API key (default: $QUAID_API_KEY)",
    )
    parser.add_argument(
        "--public-url",
        default=os.environ.get("QUAID_PUBLIC_URL", ""),
        help="quaid's address as analysts reach it, for the links written into MISP (default: --quaid)",
    )
    parser.add_argument("--top", type=int, default=DEFAULT_TOP, help="matches considered per picture")
    parser.add_argument(
        "--distribution",
        type=int,
        choices=sorted(LEVEL_NAMES),
        default=ORG_ONLY,
        help="widest distribution of what is written: "
        + ", ".join(f"{level} {name}" for level, name in sorted(LEVEL_NAMES.items()))
        + " (default 0; never wider than either event)",
    )
    parser.add_argument(
        "--tag-only", action="store_true", help="decision tags only, no object naming the other event"
    )
    parser.add_argument(
        "--republish", action="store_true", help="publish again the events the writes unpublished"
    )
    parser.add_argument(
        "--other-orgs", action="store_true", help="also write into events of other organisations"
    )
    parser.add_argument(
        "--global-tags", action="store_true", help="global decision tags instead of local ones"
    )
    parser.add_argument(
        "--attach-diff",
        action="store_true",
        help="attach quaid's drawing of what differs between the two pictures to each stand-in object",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP call")
    parser.add_argument("--insecure", action="store_true", help="do not verify MISP's TLS certificate")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="search only: register nothing in quaid, write nothing in MISP; list every write it would make",
    )


def run(args: argparse.Namespace) -> int:
    """Run the write-back for parsed ``args``; returns the exit code."""
    # PyMISP is imported here, not at module level: ``quaid``'s parser imports this module.
    from pymisp import PyMISP, PyMISPError

    from quaid_client import QuaidClient, ServiceError
    from quaid_misp_sync.follow import run_follow
    from quaid_misp_sync.sync import Selection, SyncError, run_sync

    if not args.key:
        print("quaid misp-sync: a MISP API key is needed (--key or $MISP_KEY)", file=sys.stderr)
        return 2
    selection = Selection(event=args.event, since=args.since, tag=args.tag)
    if args.follow and (args.event or args.since or args.tag):
        print("quaid misp-sync: --follow reads quaid's match events: give no --event, --since or --tag",
              file=sys.stderr)
        return 2
    try:
        misp = PyMISP(args.url, args.key, ssl=not args.insecure, timeout=args.timeout, tool="quaid misp-sync")
        quaid = QuaidClient(args.quaid, args.quaid_key or None, timeout=args.timeout)
        policy = WritePolicy(
            distribution=args.distribution,
            tag_only=args.tag_only,
            republish=args.republish,
            other_orgs=args.other_orgs,
            global_tags=args.global_tags,
            attach_diff=args.attach_diff,
        )
        if args.follow:
            counts, recorder = run_follow(misp, quaid, args.state, policy, dry_run=args.dry_run,
                                          quaid_ui=args.public_url)
        else:
            counts, recorder = run_sync(
                misp,
                quaid,
                selection,
                dry_run=args.dry_run,
                top=args.top,
                progress=_bar,
                policy=policy,
                quaid_ui=args.public_url,
            )
    except (SyncError, PyMISPError, ServiceError, ValueError) as exc:
        print(f"quaid misp-sync: {exc}", file=sys.stderr)
        return 2
    title = "dry run, nothing written" if args.dry_run else "done"
    print(f"quaid misp-sync: {title}")
    if args.dry_run:
        for line in recorder.planned:
            print(f"  would write: {line}")
    for name, value in sorted(counts.items()):
        print(f"  {name}: {value}")
    return 1 if counts.get("errors") else 0


def default_state() -> Path:
    """Where ``--follow`` keeps its position unless ``--state`` says otherwise."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "quaid" / "misp-sync.position"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="quaid misp-sync",
        description="Send the pictures of MISP events to quaid and record the matches in MISP.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def _bar(items, label: str):
    from tqdm import tqdm

    return tqdm(items, desc=label, unit="picture", file=sys.stderr, disable=None)

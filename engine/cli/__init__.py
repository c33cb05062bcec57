"""The ``quaid`` command line: one argparse parser, one sub-command module per concern.

How to add commands (other engineers: this is the only place to touch):

1. write ``engine/cli/<module>.py`` exposing ``register(subparsers) -> None``; it calls
   ``subparsers.add_parser(name, help=..., description=...)`` for each of its commands
   and sets ``parser.set_defaults(func=run)`` where ``run(args) -> int`` returns the exit code;
2. name the module in :data:`COMMAND_MODULES` below (already done for ``serve`` and
   ``evaluation``: a module listed here is imported only when its file exists, so a
   command appears as soon as its module lands, without editing this file).

Conventions every command follows: progress bars go to stderr (:mod:`tqdm`), results
to stdout; ``--json`` prints one JSON object per line; a failure on one input is
reported on stderr in one line and the command goes on, returning 1 at the end;
:class:`engine.errors.QuaidError` raised by a command, or
:class:`quaid_client.ServiceError` from a running service (``--server``), becomes a one-line
message and exit code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from engine import __version__
from engine.errors import QuaidError
from quaid_client import ServiceError

# Explicit list, in help order. Modules not yet written are skipped (see module docstring).
COMMAND_MODULES: tuple[str, ...] = (
    "engine.cli.pictures",  # add, search, show, delete, stats, export
    "engine.cli.serve",  # serve (service)
    "engine.cli.evaluation",  # dataset, evaluate, calibrate
    "engine.cli.ail",  # ail-import (AIL crawled-screenshot folder)
    "engine.cli.misp_sync",  # misp-sync (MISP write-back, misp_modules/writeback)
    "engine.cli.reindex",  # reindex (features stored by another algorithm version)
    "engine.cli.hashes",  # hash (hashes in the formats partners exchange)
    "engine.cli.hash_lists",  # import-hashes (a partner's hash list as references without pictures)
    "engine.cli.compare",  # compare (visual difference of two pictures)
    "engine.cli.events",  # events (matches found when pictures were added)
    "engine.cli.brands",  # brand (each brand's own domains, for brand verdicts)
    "engine.cli.lookyloo",  # lookyloo-import (captures' screenshots from a Lookyloo instance)
    "engine.cli.noise",  # noise add|remove|list (the noise bank)
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every available command module registered."""
    parser = argparse.ArgumentParser(
        prog="quaid",
        description="Correlate pictures: find known pictures that are the same or nearly the same.",
    )
    parser.add_argument("--version", action="version", version=f"quaid {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``quaid`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (QuaidError, ServiceError) as exc:
        print(f"quaid {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

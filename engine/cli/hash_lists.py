"""``quaid import-hashes FILE --format pdq-csv|lines``: a partner's hash list as hash-only references.

Each line becomes a reference with no picture (:mod:`engine.hash_import`): searches meet it,
never as an accepted match. A line that cannot be read or stored is reported on stderr in one
line and the others are still imported (exit code 1 at the end).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli.backend import open_backend
from engine.config import load_settings
from engine.errors import BadInput
from engine.hash_import import FORMATS
from engine.hash_search import KINDS
from engine.validation import printable


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import-hashes", help="store a partner's hash list as references without pictures",
        description="Store each line of a partner's hash list as a hash-only reference. Formats: "
                    "pdq-csv (hash,quality,filename a line, as ThreatExchange's PDQ hasher prints "
                    "it) or lines ('TYPE VALUE' a line as python-threatexchange's signal files, or "
                    "bare values with --hash-name). Matches with such references are never accepted.")
    p.add_argument("file", metavar="FILE", help="the list (UTF-8 text)")
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    p.add_argument("--hash-name", choices=sorted(KINDS), help="the hash type of bare values (lines)")
    p.add_argument("--tag", action="append", default=[], dest="tags", help="tag every reference (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per line of the list")
    p.add_argument("--server", metavar="URL",
                   help="go through a running `quaid serve` at URL (API key from $QUAID_API_KEY)")
    p.set_defaults(func=run_import_hashes)


def run_import_hashes(args: argparse.Namespace) -> int:
    path = Path(args.file)
    limit = load_settings().max_upload_bytes
    try:
        if path.stat().st_size > limit:
            raise BadInput(f"{path.name}: {path.stat().st_size} bytes, above the upload limit of {limit}")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise BadInput(f"cannot read {printable(str(path))}: {reason}") from None
    with open_backend(args.server) as quaid:
        summary = quaid.import_hashes(text, args.fmt, args.hash_name, args.tags)
    for result in summary["results"]:
        if "error" in result:
            print(f"quaid import-hashes: {printable(path.name)} line {result['line']}: "
                  f"{printable(result['error'])}", file=sys.stderr)
        if args.json:
            sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    if not args.json:
        print(f"{summary['added']} added, {summary['duplicate']} already stored, {summary['failed']} failed")
    return 1 if summary["failed"] else 0

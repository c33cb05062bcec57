"""``quaid reindex``: re-extract the features stored by another version of quaid's algorithms.

Every other command refuses such a store (see :mod:`engine.store.versions`); this one opens it,
re-extracts each stale picture from its original (kept in the store, or found in ``--from``
folders by SHA-256) and may be interrupted at any time: running it again goes on where it
stopped (:mod:`engine.reindex`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.config import load_settings
from engine.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reindex", help="re-extract features stored by another version of quaid's algorithms",
        description="Re-extract, from the original pictures, the features that an older quaid stored "
                    "(the store is refused until this is done). Originals come from the store when it "
                    "keeps them (keep = original), else from --from folders, matched by SHA-256 (the "
                    "picture id). Safe to interrupt: run it again to go on.")
    p.add_argument("--from", dest="folders", type=Path, action="append", default=[], metavar="DIR",
                   help="folder (or file) holding original pictures; repeatable")
    p.add_argument("--drop-missing", action="store_true",
                   help="delete the stale pictures whose original is found nowhere")
    p.add_argument("--list-missing", action="store_true",
                   help="only print the ids of stale pictures whose original is found nowhere")
    p.set_defaults(func=run_reindex)


def run_reindex(args: argparse.Namespace) -> int:
    from engine.core import Quaid  # imported late: `quaid --help` must not need Redis
    from engine.reindex import original_bytes, originals_in, reindex

    for folder in args.folders:
        if not folder.exists():
            raise BadInput(f"--from {folder}: no such file or folder")
    settings = load_settings()
    originals = originals_in(args.folders, settings.max_upload_bytes)
    with Quaid.open(settings, allow_stale=True) as quaid:
        if args.list_missing:
            for picture_id in sorted(quaid.mirror.stale):
                if original_bytes(quaid, picture_id, originals) is None:
                    print(picture_id)
            return 0
        result = reindex(quaid, originals, drop_missing=args.drop_missing)
        left = len(quaid.mirror.stale)
    print(json.dumps({**result.to_json(), "stale_left": left}))
    for picture_id, reason in result.failed:
        print(f"quaid reindex: {picture_id}: {reason}", file=sys.stderr)
    if result.missing:
        print(f"quaid reindex: {len(result.missing)} picture(s) have no original in the store (it keeps "
              f"{settings.keep!r}) nor in --from: give their files with --from DIR or drop them with "
              f"--drop-missing (ids: --list-missing)", file=sys.stderr)
    return 1 if left else 0

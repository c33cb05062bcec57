"""``quaid compare A B -o diff.png``: the visual difference of two pictures, as the review queue shows it.

``A`` is a stored picture (id or unique id prefix) or a picture file, which is compared without
being stored; ``B`` is a stored picture. The PNG shows A, and B aligned into A's frame, with the
regions that differ marked (:mod:`engine.visual_diff`); the numbers it shows are printed too.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from engine.cli.pictures import _add_server_option, _open_quaid, read_picture
from engine.config import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="draw what differs between two pictures (PNG)",
        description="Align stored picture B onto A (a stored picture's id, or a picture file) and write a "
                    "PNG with the regions that differ marked: red rewritten content, blue blocks a copy adds "
                    "(banner, dialog), orange weak differences.")
    parser.add_argument("a", help="stored picture id (or unique prefix), or a picture file")
    parser.add_argument("b", help="stored picture id (or unique prefix)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="PNG file to write")
    _add_server_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    limit = load_settings().max_upload_bytes
    query = read_picture(Path(args.a), limit) if Path(args.a).is_file() else None
    if args.server:
        from quaid_client import QuaidClient

        with QuaidClient(args.server, os.environ.get("QUAID_API_KEY")) as client:
            png = client.compare_picture(query, args.b, Path(args.a).name) if query is not None \
                else client.compare(args.a, args.b)
        summary = ""
    else:
        from engine.compare import compare_query, compare_stored

        with _open_quaid() as quaid:
            b = quaid.resolve(args.b)
            diff = compare_query(quaid, query, b) if query is not None \
                else compare_stored(quaid, quaid.resolve(args.a), b)
        png = diff.png
        summary = (f": {'aligned' if diff.aligned else 'not aligned'}, {diff.share:.1%} of content differs, "
                   f"{diff.rewritten} rewritten region(s), added blocks: {', '.join(diff.added) or 'none'}")
    args.output.write_bytes(png)
    print(f"wrote {args.output}{summary}")
    return 0

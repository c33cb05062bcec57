"""``quaid hash FILE...``: each picture's hashes as partners' tools compute them (:mod:`engine.exchange`).

Reads nothing from and writes nothing to the store: it needs neither Redis nor a server.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.cli.pictures import iter_files, read_picture
from engine.config import load_settings
from engine.errors import QuaidError
from engine.exchange import hash_record
from engine.validation import file_name, printable


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "hash", help="print each picture's hashes in the formats partners exchange",
        description="Print, per picture file, its ImageHash aHash/pHash/dHash/wHash, PDQ (with its "
                    "quality), image-match's Goldberg signature, ForBild, perception's pHash "
                    "(phash_dct_base64) and pixel TLSH, each as its reference tool computes and "
                    "writes it. Folders are walked. A file that is not "
                    "a picture is reported on stderr and the others are still hashed (exit code 1).")
    p.add_argument("paths", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true",
                   help='one JSON object per file and line: {"file", "id", "hashes": {name: value}}')
    p.set_defaults(func=run_hash)


def run_hash(args: argparse.Namespace) -> int:
    settings = load_settings()
    failures = 0
    files = list(iter_files(args.paths))
    for path in files:
        try:
            record = hash_record(read_picture(path, settings.max_upload_bytes), file_name(path),
                                 max_pixels=settings.max_pixels, working_side=settings.working_side)
        except (QuaidError, OSError) as exc:
            failures += 1
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(f"quaid hash: {printable(file_name(path))}: {printable(reason)}", file=sys.stderr)
            if args.json:
                _print_json({"file": file_name(path), "id": None, "hashes": None, "error": reason})
            continue
        if args.json:
            _print_json(record)
        else:
            print(_text(record))
    return 1 if failures or not files else 0


def _text(record: dict) -> str:
    lines = [f"{printable(record['file'])}  {record['id']}"]
    for name, value in record["hashes"].items():
        shown = " ".join(map(str, value)) if isinstance(value, list) else value
        lines.append(f"  {name:<12} {shown}")
    return "\n".join(lines)


def _print_json(value: dict) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()

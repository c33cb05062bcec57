"""``quaid ail-import DIR``: index an AIL crawled-screenshot folder and report look-alikes.

For AIL users who cannot install a module into AIL: point it at AIL's screenshot folder
(``CRAWLED_SCREENSHOT/screenshot``, laid out ``ab/cd/ef/gh/ij/kl/<rest>.png`` with the
SHA-256 of the PNG as AIL id) and it

1. indexes every screenshot under its AIL id (name ``screenshot::<id>``, tag ``ail:screenshot``),
   in the local store or, with ``--server``, in a running quaid service;
2. searches with every screenshot and reports each pair of look-alikes once, with AIL ids:
   ``--report FILE.csv`` and/or ``--json`` (one ``{"screenshot", "match", "decision",
   "distance"}`` object per line on stdout).

Idempotent: indexing is keyed on the bytes' SHA-256, and the search runs only once every
screenshot is indexed, so a second run over the same folder gives the same report. It
skips what AIL's own image modules skip: GIFs and AIL's placeholder screenshots (a bare
folder carries no tags, so the unsafe-tag rule can only apply inside AIL). A screenshot
quaid answers as noise (a blank, error, challenge or placeholder page, or a copy of a picture
in quaid's noise bank) is counted and reported with no pair, as the AIL module tags nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from tqdm import tqdm

from ail_connector.ail_objects import PLACEHOLDER_SCREENSHOTS, SCREENSHOT, AILRef, is_gif, sha256_hex
from ail_connector.layout import PictureFile, walk_pictures
from engine.cli.backend import Backend, open_backend
from engine.cli.pictures import read_picture
from engine.config import load_settings
from engine.errors import BadInput, QuaidError
from quaid_client import ServiceError

REPORT_FIELDS = ("screenshot", "match", "decision", "distance")
_RANK = {"accepted": 0, "to-review": 1, "rejected": 2}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ail-import`` to the ``quaid`` parser."""
    p = subparsers.add_parser(
        "ail-import", help="index an AIL crawled-screenshot folder and report look-alike screenshots",
        description="Index every screenshot of an AIL screenshot folder (2-character folder layout) "
                    "under its AIL id, then report pairs of screenshots that are the same or nearly "
                    "the same. Safe to run again: the report of an unchanged folder is unchanged.")
    p.add_argument("folder", metavar="DIR", help="AIL screenshot folder (CRAWLED_SCREENSHOT/screenshot)")
    p.add_argument("--report", metavar="FILE.csv", help="write the pairs to a CSV file")
    p.add_argument("--json", action="store_true", help="print one JSON object per pair on stdout")
    p.add_argument("--server", metavar="URL", help="use a running quaid service instead of the local store")
    p.add_argument("--api-key", metavar="KEY", help="API key for --server (default: $QUAID_API_KEY)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="at most N matches per screenshot (10)")
    p.add_argument("--all", action="store_true", dest="include_rejected",
                   help="also report rejected candidates")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise BadInput(f"{folder}: not a folder")
    if args.top < 1:
        raise BadInput("--top must be at least 1")
    pictures = list(walk_pictures(folder, SCREENSHOT))
    failures = 0
    with open_backend(args.server, args.api_key) as backend:
        indexed, counts, failures = _index(backend, pictures)
        rows, search_failures, noise = _correlate(backend, indexed, args.top, args.include_rejected)
    failures += search_failures
    rows.sort(key=lambda r: (r["screenshot"], _RANK.get(r["decision"], 3), r["distance"], r["match"]))
    if args.report:
        _write_csv(Path(args.report), rows)
    if args.json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        sys.stdout.flush()
    decisions = {d: sum(r["decision"] == d for r in rows) for d in _RANK}
    print(f"quaid ail-import: {len(pictures)} screenshot(s): {counts['added']} added, "
          f"{counts['duplicate']} already indexed, {counts['skipped']} skipped, {failures} failed, "
          f"{noise} noise (no pair reported); "
          f"{len(rows)} pair(s): " + ", ".join(f"{n} {d}" for d, n in decisions.items() if n),
          file=sys.stderr)
    return 1 if failures else 0


def _index(backend: Backend,
           pictures: list[PictureFile]) -> tuple[dict[str, PictureFile], dict[str, int], int]:
    """Phase 1: add every screenshot; returns quaid id -> file for those indexed."""
    indexed: dict[str, PictureFile] = {}
    counts = {"added": 0, "duplicate": 0, "skipped": 0}
    failures = 0
    limit = load_settings().max_upload_bytes
    for picture in tqdm(pictures, desc="index", unit="pic", file=sys.stderr, disable=None):
        try:
            data = read_picture(picture.path, limit)  # regular files only, never past the limit
            if picture.id in PLACEHOLDER_SCREENSHOTS or is_gif(data) or not data:
                counts["skipped"] += 1
                continue
            if sha256_hex(data) != picture.id:
                tqdm.write(f"quaid ail-import: {picture.path}: bytes do not hash to the AIL id, "
                           "indexed under the bytes' SHA-256", file=sys.stderr)
            ref = AILRef(SCREENSHOT, picture.id)
            answer = backend.add(data, name=ref.global_id, tags=["ail:screenshot"],
                                 metadata={"ail_global_id": ref.global_id})
        except (QuaidError, ServiceError, OSError) as exc:
            failures += 1
            tqdm.write(f"quaid ail-import: {picture.path}: {_reason(exc)}", file=sys.stderr)
            continue
        counts["duplicate" if answer.get("status") == "duplicate" else "added"] += 1
        indexed[str(answer["id"])] = picture
    return indexed, counts, failures


def _correlate(backend: Backend, indexed: dict[str, PictureFile], top: int,
               include_rejected: bool) -> tuple[list[dict], int, int]:
    """Phase 2: search with every indexed screenshot; one row per unordered pair. Also returns
    the failures and the screenshots answered as noise (which get no row)."""
    rows: list[dict] = []
    seen: set[frozenset[str]] = set()
    failures = noise = 0
    limit = load_settings().max_upload_bytes
    for quaid_id, picture in tqdm(sorted(indexed.items(), key=lambda kv: kv[1].id), desc="correlate",
                                  unit="pic", file=sys.stderr, disable=None):
        try:
            answer = backend.search(read_picture(picture.path, limit), top=top + 1,
                                    include_rejected=include_rejected, name=f"screenshot::{picture.id}")
        except (QuaidError, ServiceError, OSError) as exc:
            failures += 1
            tqdm.write(f"quaid ail-import: {picture.path}: {_reason(exc)}", file=sys.stderr)
            continue
        if answer.get("noise"):
            noise += 1
            continue
        for match in answer.get("matches") or []:
            match_id = str(match["id"])
            if match_id == quaid_id or (match["decision"] == "rejected" and not include_rejected):
                continue
            match_ail = indexed[match_id].id if match_id in indexed else match_id
            pair = frozenset((picture.id, match_ail))
            if pair in seen:
                continue
            seen.add(pair)
            rows.append({"screenshot": picture.id, "match": match_ail, "decision": match["decision"],
                         "distance": round(float(match["distance"]), 6)})
    return rows, failures, noise


def _write_csv(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=REPORT_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)

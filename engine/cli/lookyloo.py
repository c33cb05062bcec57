"""``quaid lookyloo-import --url URL``: index a Lookyloo instance's capture screenshots, report look-alikes.

For each recent capture (oldest first; ``--since`` to go further back than Lookyloo's
default of one day) it reads the capture's URL, landing page (where its redirects ended)
and screenshot through PyLookyloo (:mod:`engine.lookyloo_source`), stores the screenshot
(name ``lookyloo:<uuid>``, tag ``lookyloo:capture``, metadata: the capture's UUID,
instance, URL, landing URL, domain (the landing page's host), title, time), then searches
with it on that domain, so a capture that looks like a brand baseline on another domain is
reported ``phishing-suspected``
(:mod:`engine.brands`). Each capture is reported with the stored pictures it matches
(accepted and to-review), earlier captures included; one stored as noise (a blank, error or
challenge page: :mod:`engine.noise`) says so and matches nothing.

Idempotent: the captures imported from an instance are remembered in the quaid home
(``lookyloo/<instance>.json``, capture UUID -> picture id); a second run skips them without
downloading them again, unless their picture has since left the store. One capture that
fails (unknown, no screenshot, not a picture) fails alone; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from engine.cli.backend import Backend, LocalStore, open_backend
from engine.config import load_settings
from engine.domains import host_of
from engine.errors import BadInput, NotFound, QuaidError
from engine.validation import check_metadata, printable
from quaid_client import ServiceError
from quaid_client.errors import RequestRefused

TAG = "lookyloo:capture"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lookyloo-import", help="index a Lookyloo instance's capture screenshots and report look-alikes",
        description="Store the screenshots of a Lookyloo instance's recent captures with their URLs, and "
                    "report for each the stored pictures it matches (with a brand verdict when it looks "
                    "like a brand baseline). Safe to run again: captures already imported are skipped.")
    p.add_argument("--url", required=True, metavar="URL", help="the Lookyloo instance, e.g. https://lookyloo.example")
    p.add_argument("--since", metavar="DATE",
                   help="captures since DATE (ISO 8601, e.g. 2026-12-01 or 2026-12-01T08:00:00+01:00; "
                        "UTC when no offset is given); default: Lookyloo's, the last day")
    p.add_argument("--api-key", metavar="KEY",
                   help="Lookyloo API key (default: $LOOKYLOO_API_KEY): also the captures not listed "
                        "on its index")
    p.add_argument("--top", type=int, default=10, metavar="N", help="at most N matches per capture (10)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="seconds per request to Lookyloo (30)")
    p.add_argument("--json", action="store_true", help="print one JSON object per capture on stdout")
    p.add_argument("--server", metavar="URL",
                   help="store in a running `quaid serve` at URL (API key from $QUAID_API_KEY)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.lookyloo_source import LookylooSource

    if args.top < 1:
        raise BadInput("--top must be at least 1")
    if not args.timeout > 0:
        raise BadInput("--timeout must be a positive number of seconds")
    since = parse_since(args.since) if args.since else None
    source = LookylooSource(args.url, args.api_key or os.environ.get("LOOKYLOO_API_KEY"), args.timeout)
    captures = source.recent(since)
    ledger = Ledger(ledger_path(load_settings().home, source.root_url))
    counts = {"added": 0, "duplicate": 0, "skipped": 0, "error": 0}
    similar = phishing = 0
    with open_backend(args.server) as backend:
        for capture in tqdm(captures, desc="lookyloo", unit="capture", file=sys.stderr, disable=None):
            row = _import_one(source, backend, ledger, capture, args.top)
            counts[row["status"]] += 1
            similar += bool(row.get("similar"))
            phishing += row.get("verdict") == "phishing-suspected"
            _print(args, row)
    print(f"quaid lookyloo-import: {len(captures)} capture(s): {counts['added']} added, "
          f"{counts['duplicate']} already stored, {counts['skipped']} imported before, "
          f"{counts['error']} failed; {similar} with similar pictures, {phishing} phishing-suspected",
          file=sys.stderr)
    return 1 if counts["error"] else 0


def _import_one(source, backend: Backend, ledger: Ledger, capture: str, top: int) -> dict:
    """Store and search one capture; its report row (``status``: added, duplicate, skipped, error)."""
    from engine.lookyloo_source import CaptureFailed

    row: dict = {"capture": capture}
    if not _is_uuid(capture):  # it becomes a request path and a picture name: nothing else goes
        tqdm.write(f"quaid lookyloo-import: {printable(capture[:80])}: not a capture UUID", file=sys.stderr)
        return {**row, "status": "error", "error": "not a capture UUID"}
    known = ledger.get(capture)
    if known and _still_stored(backend, known):
        return {**row, "status": "skipped", "id": known}
    try:
        info = source.info(capture)
        domain = _domain(info.landing_url)
        data = source.screenshot(capture)
        metadata = {"lookyloo_capture": capture, "lookyloo": source.root_url, "url": info.url,
                    "landing_url": info.landing_url, "title": info.title, "capture_time": info.capture_time}
        if domain:
            metadata["domain"] = domain
        added = backend.add(data, name=f"lookyloo:{capture}", tags=[TAG], metadata=check_metadata(metadata))
        answer = backend.search(data, top=top + 1, name=f"lookyloo:{capture}", domain=domain)
        ledger.record(capture, str(added["id"]))  # after the search: a failed one is tried again
    except (CaptureFailed, QuaidError, ServiceError) as exc:
        tqdm.write(f"quaid lookyloo-import: {capture}: {printable(str(exc))}", file=sys.stderr)
        return {**row, "status": "error", "error": str(exc)}
    similar = [_similar(m) for m in answer["matches"] if m["id"] != added["id"]][:top]
    row.update(status=added["status"], id=added["id"], url=info.url, landing_url=info.landing_url,
               domain=domain, similar=similar)
    for key in ("verdict", "brand"):
        if key in answer:
            row[key] = answer[key]
    if added.get("noise"):  # a blank, error or challenge page: stored in the noise bank, matches nothing
        row["noise"] = added["noise"]
    return row


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def _similar(match: dict) -> dict:
    found = {key: match[key] for key in ("id", "name", "decision", "distance")}
    if match.get("verdict"):
        found["verdict"] = match["verdict"]
    return found


def _domain(url: str) -> str | None:
    """The capture's host, when its URL has one (Lookyloo answers a sentence when it lost it)."""
    try:
        return host_of(url)
    except BadInput:
        return None


def _still_stored(backend: Backend, picture_id: str) -> bool:
    try:
        if isinstance(backend, LocalStore):
            backend.quaid.get(picture_id)
        else:
            backend.get(picture_id)  # type: ignore[attr-defined]
    except NotFound:
        return False
    except RequestRefused as exc:
        if exc.status == 404:
            return False
        raise
    return True


def parse_since(text: str) -> datetime:
    """``--since`` as an aware date-time (UTC when no offset is given)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"--since wants an ISO 8601 date, e.g. 2026-12-01, "
                       f"got {printable(text[:60])!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def ledger_path(home: Path, root_url: str) -> Path:
    """Where the captures imported from one instance are remembered (one file per instance URL)."""
    return Path(home) / "lookyloo" / (hashlib.sha256(root_url.encode()).hexdigest()[:16] + ".json")


class Ledger:
    """Capture UUID -> picture id of one instance's imported captures, rewritten whole after each
    capture (atomically: a run stopped midway keeps what it imported)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            loaded = {}
        except (OSError, ValueError) as exc:
            raise QuaidError(f"{path}: unreadable list of imported captures ({exc}); move it away") from None
        self.entries: dict[str, str] = loaded.get("captures", {}) if isinstance(loaded, dict) else {}

    def get(self, capture: str) -> str | None:
        return self.entries.get(capture)

    def record(self, capture: str, picture_id: str) -> None:
        self.entries[capture] = picture_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"captures": self.entries}), encoding="utf-8")
        tmp.replace(self.path)


def _print(args: argparse.Namespace, row: dict) -> None:
    if args.json:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    if row["status"] == "error":
        return  # already said on stderr
    verdict = f"  [{row['verdict']}: {printable(row['brand']['name'])}]" if row.get("verdict") else ""
    noise = f"  [noise: {row['noise']['reason']}]" if row.get("noise") else ""
    where = printable(row.get("domain") or "")
    lines = [f"{row['status']:<9} {row['capture']}  {where}{verdict}{noise}"]
    for match in row.get("similar", []):
        lines.append(f"    {match['decision']:<9} {match['distance']:.4f}  {match['id'][:16]}  "
                     f"{printable(match['name'])}")
    tqdm.write("\n".join(lines), file=sys.stdout)

"""Hash-only references: a partner's list of hashes stored as references without a picture.

Some pictures can never be shared, only their hashes. Each entry of such a list is stored
like a picture (record, features, index codes, its own cluster) whose features are the given
hashes put where the enabled algorithm computing that hash keeps its feature
(:data:`engine.hash_search.KINDS`); it has no image, ``format`` is ``"hashes"`` and the API
shows it with ``"hash_only": true``. Its id is the SHA-256 of the text
``hashes:`` + the sorted ``name=value`` pairs, so importing a list twice stores nothing new.

A search that meets one (by picture or by hashes) never accepts it: the match goes to review
with ``"reason": "hashes-only"`` (see :mod:`engine.hash_search` for why). A reference stored
near earlier pictures announces them as a match event (:mod:`engine.store.match_events`), to
review, as a picture added does: a partner's list can concern last month's screenshots. Its features are a
partner tool's output in a fixed exchange format, not quaid's extraction, so they are stamped
with the exchange format's version (:data:`HASH_ONLY_VERSIONS`) instead of the algorithms':
an algorithm upgrade does not make them stale, and ``quaid reindex`` (which needs the
picture's bytes) never has to re-extract them.

List formats (:func:`read_list`):

- ``pdq-csv``: what ThreatExchange's ``pdq-photo-hasher`` prints, one picture a line,
  ``hash,quality,filename`` (quality and filename may be left out); the filename becomes the name;
  a quality under 50 fails the line, as ThreatExchange does not match on such hashes
  (:func:`engine.hash_search.check_pdq_quality`);
- ``lines``: python-threatexchange's local signal file (``exchanges/impl/file_api.py``): one
  ``TYPE VALUE`` a line (``pdq 3f0a...``), or a bare ``VALUE`` when ``hash_name`` says its type.

Blank lines and lines starting with ``#`` are skipped; a malformed line fails alone, and so
does a name or tag that :mod:`engine.validation` refuses (control characters, length).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.errors import BadInput
from engine.hash_search import KINDS, check_pdq_quality, parse_hashes, query_features, search_hashes
from engine.store.records import HASH_ONLY_FORMAT, IndexEntry, new_record
from engine.store.versions import encode
from engine.validation import check_metadata, check_name, check_tags

if TYPE_CHECKING:
    from engine.core import AddResult, Quaid

FORMATS = ("pdq-csv", "lines")
HASH_ONLY_VERSIONS = {"hashes": 1}  # the exchange formats of engine.hash_search.KINDS


@dataclass(frozen=True)
class ListEntry:
    """One line of a partner's list: its hashes, or why it cannot be read."""

    line: int
    hashes: dict[str, str] = field(default_factory=dict)
    name: str = ""
    metadata: dict = field(default_factory=dict)
    error: str | None = None


def reference_id(hashes: Mapping[str, str]) -> str:
    """The id of a hash-only reference: SHA-256 of ``hashes:`` + sorted ``name=value`` (hex in lower case)."""
    text = "hashes:" + ";".join(f"{n}={_canonical(n, v)}" for n, v in sorted(hashes.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(name: str, value: str) -> str:
    return value if name == "phash_dct_base64" else value.lower()


def add_hash_reference(quaid: Quaid, hashes: object, name: str = "", tags: Iterable[str] = (),
                       metadata: Mapping | None = None) -> AddResult:
    """Store one hash-only reference ("added", or "duplicate" when the same hashes are stored)."""
    from engine.core import AddResult

    checked = parse_hashes(hashes)
    features = {slot: feature for slot, (_, feature) in query_features(quaid, checked).items()}
    if not features:
        raise BadInput(f"none of these hashes ({', '.join(checked)}) is compared by the enabled algorithms")
    picture_id = reference_id(checked)
    existing = quaid.records.get(picture_id)
    if existing is not None:
        return AddResult(picture_id, existing.name, "duplicate", existing.cluster)
    name = check_name(name or " ".join(f"{n}:{v[:16]}" for n, v in sorted(checked.items())))
    tags, metadata = check_tags(tags), check_metadata({**dict(metadata or {}), "hashes": checked})
    codes = quaid.matcher.prefilter_codes(features)
    earlier = _near(quaid, checked)  # searched before it is stored, so it does not find itself
    cluster = quaid.records.next_cluster()
    record = new_record(picture_id, name=name, tags=tuple(tags), metadata=metadata, format=HASH_ONLY_FORMAT,
                        cluster=cluster, versions=HASH_ONLY_VERSIONS)
    quaid.mirror.changes.publish("add", picture_id)  # before the write: see engine.store.changes
    if not quaid.records.put(record, features, codes):
        return AddResult(picture_id, name, "duplicate", cluster)
    quaid.mirror.apply(IndexEntry(picture_id, codes, cluster, record.added, encode(HASH_ONLY_VERSIONS)))
    quaid.announce(record, earlier)
    return AddResult(picture_id, name, "added", cluster)


def _near(quaid: Quaid, checked: dict[str, str]) -> list[dict]:
    """The stored pictures a new reference is near (to review at best: hashes only), as its match
    event names them, as a picture added announces the earlier pictures it matched; none when its
    best match is a noise picture (engine.noise: news to nobody)."""
    from engine.core import MAX_EVENT_MATCHES

    try:
        found = search_hashes(quaid, checked, top=MAX_EVENT_MATCHES)
    except BadInput:  # hashes the candidate index cannot search: there is nothing to announce
        return []
    if "noise" in found:
        return []
    fields = ("id", "name", "decision", "distance", "reason")
    return [{k: m[k] for k in fields if k in m} for m in found["matches"]]


def read_list(text: str, fmt: str, hash_name: str | None = None) -> Iterator[ListEntry]:
    """The entries of a partner's list, in order; unreadable lines as entries with ``error``."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown list format {fmt!r}; use {' or '.join(FORMATS)}")
    if hash_name is not None and hash_name not in KINDS:
        raise BadInput(f"unknown hash {hash_name!r}; known: {', '.join(KINDS)}")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            yield _pdq_csv(number, stripped) if fmt == "pdq-csv" else _typed_line(number, stripped, hash_name)
        except BadInput as exc:
            yield ListEntry(number, error=str(exc))


def _pdq_csv(number: int, line: str) -> ListEntry:
    fields = next(csv.reader(io.StringIO(line)))
    value = fields[0].strip()
    entry = ListEntry(number, {"pdq": value}, name=fields[2].strip() if len(fields) > 2 else "")
    parse_hashes(entry.hashes)
    if len(fields) > 1 and fields[1].strip():
        entry.metadata["pdq_quality"] = check_pdq_quality(fields[1])
    return entry


def _typed_line(number: int, line: str, hash_name: str | None) -> ListEntry:
    kind, _, value = line.partition(" ")
    if hash_name is not None and not value:
        kind, value = hash_name, kind
    if not value.strip():
        raise BadInput("expected 'TYPE VALUE' (or give the hash name for bare values)")
    hashes = {kind: value.strip()}
    parse_hashes(hashes)
    return ListEntry(number, hashes)


def import_summary(results: list[dict]) -> dict:
    """Counts of an import's results, and the results: ``{"added", "duplicate", "failed", "results"}``."""
    statuses = [r.get("status", "error") for r in results]
    return {"added": statuses.count("added"), "duplicate": statuses.count("duplicate"),
            "failed": statuses.count("error"), "results": results}


def import_list(quaid: Quaid, entries: Iterable[ListEntry], tags: Iterable[str] = ()) -> list[dict]:
    """Store each entry; one result a line, ``{"line", "id", "name", "status"}`` or ``{"line", "error"}``."""
    results = []
    tags = tuple(tags)
    for entry in entries:
        if entry.error is None:
            try:
                added = add_hash_reference(quaid, entry.hashes, entry.name, tags, entry.metadata)
                results.append({"line": entry.line, "id": added.id, "name": added.name,
                                "status": added.status})
                continue
            except BadInput as exc:
                entry = ListEntry(entry.line, error=str(exc))
        results.append({"line": entry.line, "error": entry.error})
    return results

"""The dataset manifest: one JSON object per line, one line per picture.

Fields: ``path`` (relative to the dataset folder), ``role`` (``reference`` |
``variant`` | ``negative`` | ``distractor``: a stored page no query is made
from), ``reference`` (the reference id a variant is a copy of; a
reference's own id; ``null`` for negatives and distractors), ``id``,
``kind`` (the modification, ``original`` for references, ``unseen-page`` /
``unseen-app-page`` / ``sibling`` / ``sibling-synthetic`` / ``unseen-photo``
for negatives, ``distractor``), ``source`` (the page or photo it was made
from), ``site`` (the website or template; ``photos``), ``seed`` and
``params`` (what the modification drew; ``sibling_of`` names the stored page
a sibling negative or reference is a template sibling of).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.errors import BadInput

MANIFEST_NAME = "manifest.jsonl"
ROLES = ("reference", "variant", "negative", "distractor")


@dataclass(frozen=True)
class Entry:
    """One picture of the set."""

    id: str
    path: str
    role: str
    reference: str | None
    kind: str
    source: str
    site: str
    seed: int
    params: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def write_manifest(folder: Path, entries: list[Entry]) -> Path:
    path = folder / MANIFEST_NAME
    path.write_text("".join(e.to_json() + "\n" for e in entries))
    return path


def read_manifest(folder: Path) -> list[Entry]:
    """Entries of the dataset in ``folder``; refuses a missing or malformed manifest."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise BadInput(f"{folder} is not a quaid dataset (no {MANIFEST_NAME})")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = Entry(**json.loads(line))
        except (ValueError, TypeError) as exc:
            raise BadInput(f"{path}:{number}: bad manifest line: {exc}") from None
        if entry.role not in ROLES:
            raise BadInput(f"{path}:{number}: unknown role {entry.role!r}")
        entries.append(entry)
    return entries

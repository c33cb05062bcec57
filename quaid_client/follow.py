"""Following quaid's match events from the last position handled, across restarts.

Why: a connector (the MISP write-back, the AIL connector) reacts to "a new picture matches
these earlier ones" (``GET /api/v1/events``) and must neither miss an event nor depend on
handling one only once. :func:`follow` yields the events after the saved position, and
saves an event's position only once the caller has handled it (when it asks for the next
one): a connector stopped half-way handles that event again next time, which its
idempotent writes make harmless.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from quaid_client.client import QuaidClient

START = "0-0"
_POSITION = re.compile(r"^\d{1,20}-\d{1,20}$")


class PositionFile:
    """The position of the last event handled, in a small text file (written atomically)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> str:
        """The saved position, or the beginning when there is none yet."""
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return START
        if not _POSITION.match(text):
            raise ValueError(f"{self.path} does not hold an event position (got {text[:40]!r})")
        return text

    def save(self, position: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
        with os.fdopen(handle, "w") as out:
            out.write(position + "\n")
        os.replace(temporary, self.path)


def follow(client: QuaidClient, start: str, save: Callable[[str], None] | None = None,
           page: int = 100, on_missed: Callable[[str], None] | None = None) -> Iterator[dict]:
    """Every match event after position ``start``, oldest first, until none is left.

    ``save(position)`` is called for an event once the caller asks for the next one (or the
    iteration ends); ``on_missed(position)`` when events after ``position`` were dropped by the
    service (its stream is capped) before this reader got them.
    """
    position = start
    while True:
        answer = client.events(after=position, limit=page)
        if answer.get("missed") and on_missed is not None:
            on_missed(position)
        events = answer.get("events") or []
        if not events:
            return
        for event in events:
            yield event
            position = str(event["event"])
            if save is not None:
                save(position)

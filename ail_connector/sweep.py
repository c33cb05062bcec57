"""Find pictures that appeared in an AIL folder since the last sweep.

AIL's crawler writes each screenshot to disk and correlates it with its item and domain,
but does not queue it to the image modules (``Crawler.py``: ``# TODO screenshot OCR``). So
the AIL module sweeps the screenshot folder when its queue is idle (``computeNone``) — and
the image folder too when it runs without a queue of its own.

How: a watermark (the newest modification time already handled, plus the ids handled at
exactly that time) is kept in a small JSON state file, written atomically after every
object, so a restart resumes where it stopped and never resends the backlog. A full walk
of the folder costs one directory read per folder level and file, so walks are
rate-limited (``interval`` seconds) and their result is consumed in small batches
between queue messages. Files younger than ``settle`` seconds are left for the next walk:
the crawler may still be writing them.

The state file is read on the first sweep, not at start, so a module with an unreadable
state still starts. Its errors: a state file that cannot be read or written (permissions,
a file where its folder should be, a full disk) raises :class:`SweepStateError` — the
caller backs off and tries again, nothing is marked done; a state file whose content is
damaged is moved aside (``<name>.damaged``) and the sweep starts again from the oldest
file, since sending a picture twice changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ail_connector.ail_objects import SCREENSHOT
from ail_connector.layout import PictureFile, walk_pictures

log = logging.getLogger("quaid.ail")


class SweepStateError(Exception):
    """The sweep state file cannot be read or written now; nothing was marked done."""


class FolderSweeper:
    """Yields new pictures of an AIL screenshot or image folder, oldest first, once each."""

    def __init__(self, folder: str | Path, state_file: str | Path, interval: float = 300.0,
                 settle: float = 5.0, backfill: bool = True, obj_type: str = SCREENSHOT) -> None:
        self.folder = Path(folder)
        self.state_file = Path(state_file)
        self.interval = interval
        self.settle = settle
        self.backfill = backfill
        self.obj_type = obj_type
        self._pending: list[PictureFile] = []
        self._last_walk = float("-inf")
        self._loaded = False
        self.mark_ns, self.at_mark = 0, set()  # type: int, set[str]

    @property
    def pending(self) -> bool:
        """Whether files found by the last walk are still waiting."""
        return bool(self._pending)

    def due(self, now: float | None = None) -> bool:
        """Whether a batch can be taken now without a walk, or a walk is due."""
        now = time.monotonic() if now is None else now
        return bool(self._pending) or now - self._last_walk >= self.interval

    def batch(self, size: int = 20) -> Iterator[PictureFile]:
        """Up to ``size`` new screenshots; walks the folder when nothing is pending and it is time.

        Call :meth:`done` after handling each one, so the watermark only passes handled files.
        Raises :class:`SweepStateError` when the state file cannot be read.
        """
        self._load_once()
        if not self._pending and self.due():
            self._pending = self._walk()
            self._last_walk = time.monotonic()
        taken, self._pending = self._pending[:size], self._pending[size:]
        yield from taken

    def done(self, picture: PictureFile) -> None:
        """Record ``picture`` as handled (persisted at once; :class:`SweepStateError` if it cannot be)."""
        self._load_once()
        if picture.mtime_ns > self.mark_ns:
            self.mark_ns, self.at_mark = picture.mtime_ns, {picture.id}
        elif picture.mtime_ns == self.mark_ns:
            self.at_mark.add(picture.id)
        self._save()

    def _walk(self) -> list[PictureFile]:
        young = time.time_ns() - int(self.settle * 1e9)
        found = [p for p in walk_pictures(self.folder, self.obj_type)
                 if self._is_new(p) and p.mtime_ns <= young]
        return sorted(found, key=lambda p: (p.mtime_ns, p.id))

    def _is_new(self, p: PictureFile) -> bool:
        return p.mtime_ns > self.mark_ns or (p.mtime_ns == self.mark_ns and p.id not in self.at_mark)

    def _load_once(self) -> None:
        if not self._loaded:
            self.mark_ns, self.at_mark = self._load()
            self._loaded = True

    def _load(self) -> tuple[int, set[str]]:
        try:
            text = self.state_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            mark = 0 if self.backfill else time.time_ns()
            self._save(mark, set())
            return mark, set()
        except (OSError, UnicodeDecodeError) as exc:
            raise SweepStateError(f"sweep state {self.state_file} unreadable: {_reason(exc)}") from None
        try:
            state = json.loads(text)
            return int(state["mark_ns"]), {str(i) for i in state.get("at_mark", [])}
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._restart_damaged()

    def _restart_damaged(self) -> tuple[int, set[str]]:
        aside = self.state_file.with_name(self.state_file.name + ".damaged")
        try:
            os.replace(self.state_file, aside)
        except OSError as exc:
            raise SweepStateError(f"sweep state {self.state_file} damaged and cannot be moved aside: "
                                  f"{_reason(exc)}") from None
        log.warning("sweep state %s damaged, moved to %s; sweeping %s again from the oldest file",
                    self.state_file, aside.name, self.folder)
        self._save(0, set())
        return 0, set()

    def _save(self, mark_ns: int | None = None, at_mark: set[str] | None = None) -> None:
        mark_ns = self.mark_ns if mark_ns is None else mark_ns
        at_mark = self.at_mark if at_mark is None else at_mark
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"mark_ns": mark_ns, "at_mark": sorted(at_mark)}), encoding="utf-8")
            os.replace(tmp, self.state_file)
        except OSError as exc:
            reason = _reason(exc)
            raise SweepStateError(f"sweep state {self.state_file} cannot be written: {reason}") from None


def _reason(exc: BaseException) -> str:
    return "{}: {}".format(type(exc).__name__, getattr(exc, "strerror", None) or exc)

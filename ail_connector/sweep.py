"""Find crawler screenshots that appeared since the last sweep.

AIL's crawler writes each screenshot to disk and correlates it with its item and domain,
but does not queue it to the image modules (``Crawler.py``: ``# TODO screenshot OCR``). So
the AIL module sweeps the screenshot folder when its queue is idle (``computeNone``).

How: a watermark (the newest modification time already handled, plus the ids handled at
exactly that time) is kept in a small JSON state file, written atomically after every
object, so a restart resumes where it stopped and never resends the backlog. A full walk
of the folder costs one directory read per folder level and file, so walks are
rate-limited (``interval`` seconds) and their result is consumed in small batches
between queue messages. Files younger than ``settle`` seconds are left for the next walk:
the crawler may still be writing them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ail_connector.ail_objects import SCREENSHOT
from ail_connector.layout import PictureFile, walk_pictures


class ScreenshotSweeper:
    """Yields new screenshots of an AIL screenshot folder, oldest first, once each."""

    def __init__(self, folder: str | Path, state_file: str | Path, interval: float = 300.0,
                 settle: float = 5.0, backfill: bool = True, obj_type: str = SCREENSHOT) -> None:
        self.folder = Path(folder)
        self.state_file = Path(state_file)
        self.interval = interval
        self.settle = settle
        self.obj_type = obj_type
        self._pending: list[PictureFile] = []
        self._last_walk = float("-inf")
        self.mark_ns, self.at_mark = self._load(backfill)

    def due(self, now: float | None = None) -> bool:
        """Whether a batch can be taken now without a walk, or a walk is due."""
        now = time.monotonic() if now is None else now
        return bool(self._pending) or now - self._last_walk >= self.interval

    def batch(self, size: int = 20) -> Iterator[PictureFile]:
        """Up to ``size`` new screenshots; walks the folder when nothing is pending and it is time.

        Call :meth:`done` after handling each one, so the watermark only passes handled files.
        """
        if not self._pending and self.due():
            self._pending = self._walk()
            self._last_walk = time.monotonic()
        taken, self._pending = self._pending[:size], self._pending[size:]
        yield from taken

    def done(self, picture: PictureFile) -> None:
        """Record ``picture`` as handled (persisted at once)."""
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

    def _load(self, backfill: bool) -> tuple[int, set[str]]:
        try:
            state = json.loads(self.state_file.read_text())
            return int(state["mark_ns"]), set(state.get("at_mark", []))
        except FileNotFoundError:
            mark = 0 if backfill else time.time_ns()
            self.mark_ns, self.at_mark = mark, set()
            self._save()
            return mark, set()
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"sweep state {self.state_file} is unreadable: {exc}") from None

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps({"mark_ns": self.mark_ns, "at_mark": sorted(self.at_mark)}))
        os.replace(tmp, self.state_file)

"""Walk an AIL picture folder in its 2-character layout (``ab/cd/ef/gh/ij/kl/<rest>[.png]``).

Used by the idle-time sweep of the AIL module and by ``quaid ail-import``. Files that do
not sit where AIL would put them (wrong depth, not hex, no ``.png`` for screenshots) are
not AIL objects and are left out; so are symbolic links, as AIL's own
``get_filepath`` refuses paths that leave the folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ail_connector.ail_objects import SCREENSHOT, id_from_rel_path


@dataclass(frozen=True)
class PictureFile:
    """One file of the folder: AIL id, absolute path, modification time (ns)."""

    id: str
    path: Path
    mtime_ns: int


def walk_pictures(root: str | Path, obj_type: str = SCREENSHOT) -> Iterator[PictureFile]:
    """Every picture file under ``root`` laid out as AIL does, in sorted path order."""
    root = Path(root)
    yield from _walk(root, root, 0, obj_type)


def _walk(root: Path, folder: Path, depth: int, obj_type: str) -> Iterator[PictureFile]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink():
            continue
        if depth < 6:
            if len(entry.name) == 2 and entry.is_dir(follow_symlinks=False):
                yield from _walk(root, Path(entry.path), depth + 1, obj_type)
            continue
        if not entry.is_file(follow_symlinks=False):
            continue
        rel = Path(entry.path).relative_to(root).as_posix()
        obj_id = id_from_rel_path(rel, obj_type)
        if obj_id is None:
            continue
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime_ns
        except OSError:
            continue
        yield PictureFile(obj_id, Path(entry.path), mtime)

"""Re-extract the features of pictures stored by another algorithm version (``quaid reindex``).

Features can only be re-extracted from the bytes a picture's id was computed from. The store
keeps them only with ``keep = "original"``; the default keeps a 320 px JPEG thumbnail, and
features extracted from a thumbnail would differ from those of the picture a search will be
given — so thumbnails are never used. Without a stored original, the files come from a folder
(``--from``): every file there is matched to its picture by SHA-256, which is the picture id, so
a wrong or edited file cannot be taken for another. Pictures with no original found stay stale
(the store stays refused) until their files are given or they are dropped.

Each picture is rewritten by one Redis script (:meth:`engine.store.RecordStore.refeature`), so a
reindex killed at any point leaves every picture either old or new, and running it again goes on
with those still old: the set to do is recomputed from the store at every start.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.core import Quaid
from engine.errors import QuaidError

log = logging.getLogger(__name__)


@dataclass
class ReindexResult:
    """What a run did: ids re-extracted, without an original, dropped, and failed (id, reason)."""

    reindexed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"reindexed": len(self.reindexed), "missing": len(self.missing), "dropped": len(self.dropped),
                "failed": len(self.failed)}


def originals_in(folders: Iterable[Path], limit: int) -> dict[str, Path]:
    """Files under ``folders`` (recursively) keyed by the SHA-256 of their bytes; files over
    ``limit`` bytes are skipped (the store never accepted them), unreadable ones too, with a warning."""
    found: dict[str, Path] = {}
    for folder in folders:
        paths = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
        for path in paths:
            try:
                if path.stat().st_size <= limit:
                    found.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
            except OSError as exc:
                log.warning("%s: skipped: %s", path, exc.strerror or exc)
    return found


def original_bytes(quaid: Quaid, picture_id: str, originals: Mapping[str, Path]) -> bytes | None:
    """The picture's original bytes: kept in the store (only when they hash to its id), else from
    ``originals``; None when neither has them."""
    kept = quaid.records.image(picture_id)
    if kept is not None and hashlib.sha256(kept[0]).hexdigest() == picture_id:
        return kept[0]
    path = originals.get(picture_id)
    return path.read_bytes() if path is not None else None


def reindex(quaid: Quaid, originals: Mapping[str, Path], drop_missing: bool = False,
            progress: bool | None = None) -> ReindexResult:
    """Re-extract every stale picture of ``quaid``'s store (opened with ``allow_stale``)."""
    result = ReindexResult()
    for picture_id in _bar(sorted(quaid.mirror.stale), progress):
        try:
            data = original_bytes(quaid, picture_id, originals)
            if data is None and drop_missing:
                quaid.delete(picture_id)
                result.dropped.append(picture_id)
            elif data is None:
                result.missing.append(picture_id)
            elif quaid.refeature(picture_id, data):
                result.reindexed.append(picture_id)
        except (QuaidError, OSError) as exc:  # an original gone or refused now: reported, the rest goes on
            result.failed.append((picture_id, getattr(exc, "strerror", None) or str(exc)))
    return result


def _bar(items: list[str], enabled: bool | None):
    from tqdm import tqdm

    return tqdm(items, desc="reindex", unit="picture", file=sys.stderr, disable=enabled is False)

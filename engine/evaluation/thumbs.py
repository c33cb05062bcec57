"""Grey thumbnails of the stored pages of each site: duplicates and near-identical pages, measured.

The rule: two screenshots are one picture when under
:data:`engine.evaluation.dataset.DUPLICATE_SHARE` of the pixels of their
640 x 400 grey thumbnails move by more than :data:`PIXEL_CHANGE` grey levels.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

PIXEL_CHANGE = 24  # grey levels: a thumbnail pixel that moves more than this has changed


class StoredThumbs:
    """Grey thumbnails of the stored pages of each site, to find duplicates and measure closeness.

    A coarse 160 x 100 thumbnail per page (16 kB: the large set stores
    thousands) shortlists the closest pages; the share of changed pixels is
    then measured on 640 x 400 thumbnails (the size the duplicate rule was
    measured at), read back from the stored pictures.
    """

    SHORTLIST = 4  # stored pages measured exactly per query
    RECENT = 256  # exact thumbnails kept in memory (256 kB each)

    def __init__(self) -> None:
        self._coarse: dict[str, list[np.ndarray]] = {}
        self._ids: dict[str, list[str]] = {}
        self._sources: dict[str, Path | Image.Image] = {}
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def add(self, site: str, page_id: str, image: Image.Image, path: Path | None = None) -> None:
        """Remember a stored page; with ``path`` only its coarse thumbnail stays in memory."""
        self._coarse.setdefault(site, []).append(coarse_thumb(image))
        self._ids.setdefault(site, []).append(page_id)
        self._sources[page_id] = path if path is not None else image.copy()

    def has(self, site: str, page_id: str) -> bool:
        return page_id in self._ids.get(site, [])

    def nearest(self, site: str, image: Image.Image) -> tuple[float, str | None]:
        """The smallest share of changed pixels against a stored page of ``site``, and that page's id."""
        coarse = self._coarse.get(site)
        if not coarse:
            return 1.0, None
        rough = changed_shares(np.stack(coarse), coarse_thumb(image))
        one = thumb(image)
        best = (1.0, None)
        for index in np.argsort(rough, kind="stable")[: self.SHORTLIST]:
            page_id = self._ids[site][int(index)]
            best = min(best, (self._share(page_id, one), page_id), key=lambda pair: pair[0])
        return best

    def share_to(self, page_id: str, image: Image.Image) -> float:
        """The share of changed pixels against one stored page."""
        return self._share(page_id, thumb(image))

    def _share(self, page_id: str, one: np.ndarray) -> float:
        return float(changed_shares(self._thumb(page_id)[None], one)[0])

    def _thumb(self, page_id: str) -> np.ndarray:
        if page_id in self._recent:
            self._recent.move_to_end(page_id)
            return self._recent[page_id]
        source = self._sources[page_id]
        with (Image.open(source) if isinstance(source, Path) else source.copy()) as stored:
            self._recent[page_id] = thumb(stored).astype(np.uint8)
        if len(self._recent) > self.RECENT:
            self._recent.popitem(last=False)
        return self._recent[page_id]


def thumb(image: Image.Image) -> np.ndarray:
    """A 640 x 400 grey thumbnail (the size the duplicate rule was measured at)."""
    return np.asarray(image.convert("L").resize((640, 400), Image.Resampling.BILINEAR), dtype=np.int16)


def coarse_thumb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((160, 100), Image.Resampling.BOX), dtype=np.uint8)


def changed_shares(thumbs: np.ndarray, one: np.ndarray) -> np.ndarray:
    """Per thumbnail of the stack, the share of its pixels that differ from ``one``."""
    return np.mean(np.abs(thumbs.astype(np.int16) - one.astype(np.int16)) > PIXEL_CHANGE, axis=(1, 2))

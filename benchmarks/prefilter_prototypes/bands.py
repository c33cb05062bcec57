"""Region codes at the original pixel scale, for copies that were scrolled or re-laid out.

Why: a scrolled screenshot shows the page moved up by 120-450 px; another window size
lays the page out again (same text size, other line breaks and margins). Whole-picture
hashes resize everything to one square, so both move every cell. A region taken at the
*original* pixel scale keeps its content at the same size in both pictures:

* ``top_left_code``: the fixed top-left window (``TOP_LEFT`` px) — the logo, menu and
  first heading of a left-anchored layout, whatever the window width.
* ``stored_band_code`` / ``query_band_codes``: the stored picture's last ``BAND`` px rows;
  a query scrolled down by ``o`` shows them ``o`` px higher, so the query offers its band
  at every ``STEP`` px offset and the nearest one matches within ``STEP / 2`` px.

Each code is a 64-bit DCT sign hash of the region (Zauner 2010's pHash, on a
rectangular region: the low 4 x 16 frequencies of a 16 x 64 thumbnail against their
median). Flat regions (grey standard deviation below ``FLAT``) get no code: blank bands
would match every short page of every site.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.picture import Picture

TOP_LEFT = (768, 480)  # original px (width, height): fits every common window from 800 x 600 up
BAND = 320  # original px rows of the stored band
STEP = 32  # original px between the query's band offsets
FLAT = 6.0  # grey levels: regions flatter than this get no code
ROWS, COLS = 4, 16  # low DCT frequencies kept: 64 bits


def region_code(grey: np.ndarray, rows: int = 4, cols: int = 16) -> bytes | None:
    """64-bit DCT sign code of a grey region; ``None`` when the region is flat."""
    if grey.size == 0 or float(grey.std()) < FLAT:
        return None
    thumb = cv2.resize(grey, (4 * cols, 4 * rows), interpolation=cv2.INTER_AREA).astype(np.float64)
    low = cv2.dct(thumb)[:rows, :cols]
    return np.packbits((low > np.median(low)).ravel()).tobytes()


SHRINK = 4  # the regions are cut from a grey copy this many times smaller (cheap, enough detail)


def small_grey(picture: Picture) -> tuple[np.ndarray, float]:
    """The grey picture shrunk SHRINK times, and its scale in px per original px."""
    grey = picture.grey
    small = cv2.resize(grey, (grey.shape[1] // SHRINK, grey.shape[0] // SHRINK), interpolation=cv2.INTER_AREA)
    return small, small.shape[1] / picture.original_width


def top_left_code(picture: Picture) -> bytes | None:
    small, scale = small_grey(picture)
    width, height = (round(side * scale) for side in TOP_LEFT)
    return region_code(small[:height, :width], rows=8, cols=8)


def stored_band_code(picture: Picture) -> bytes | None:
    small, scale = small_grey(picture)
    return region_code(small[-round(BAND * scale):], ROWS, COLS)


def query_band_codes(picture: Picture, step: int = STEP) -> list[bytes]:
    small, scale = small_grey(picture)
    band, stride = round(BAND * scale), max(1, round(step * scale))
    tops = range(0, len(small) - band + 1, stride)
    codes = (region_code(small[top: top + band], ROWS, COLS) for top in tops)
    return [c for c in codes if c is not None]

"""Region codes: bands of a page at a fixed scale, so moved or contained content still matches.

Why: a whole-picture hash squeezes the picture into one square, so a page scrolled by 300
px, pushed down by an injected banner, captured in full (a picture five times taller), or
shown in a browser window on a desktop moves every cell of the hash. A horizontal *band*
of the page, at a scale fixed by the page's width, keeps its content in both pictures:
only its vertical position changes. So each stored picture keeps the codes of a few bands
at fixed offsets from its top (:func:`stored_codes`), and a query offers the code of a band
at every ``STEP`` of its height (:func:`probe_codes`): some probe lies within ``STEP / 2``
of where a stored band moved to. This is multi-probe lookup (Lv et al., "Multi-probe LSH",
VLDB 2007) along the one axis where web pages move.

Each code is a DCT sign hash of the band (Zauner 2010's pHash on a rectangle: the low
``ROWS x COLS`` frequencies of a small thumbnail against their median), so a dimmed page
(a consent modal's backdrop) keeps its bits. Flat bands (grey standard deviation below
``FLAT``) get no code: blank bands would match every short page.

The query also offers its bands mirrored (a left-right flip of a re-posted picture moves
every cell of a whole-picture hash; flipping the query's bands costs ~1 ms) and the bands of
the page found inside a window or desktop frame (:mod:`engine.candidates.content_box`).

Where to start: :func:`stored_codes` and :func:`query_probes`;
:class:`engine.algorithms.region_codes.RegionCodes` stores and offers them to the index.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.candidates.content_box import boxes
from engine.picture import Picture

ROWS, COLS = 4, 16  # DCT frequencies kept: 64 bits
WIDTH = 4 * COLS  # px: the page is scaled to this width, a scale fixed by its width (1/20 of 1280 px)
BAND = WIDTH // 4  # band height in those px: a quarter of the width (320 px of a 1280 px page)
OFFSETS = (0, 8, 16, 24)  # stored band tops in those px (0, 160, 320, 480 px of a 1280 px page)
STEP = 2  # query probe spacing in those px (40 px of a 1280 px page)
MAX_PROBES = 96  # probes per page at most (a full-page capture is many widths tall)
FLAT = 4.0  # grey levels: bands flatter than this get no code


def band_code(band: np.ndarray) -> bytes | None:
    """The 64-bit DCT sign code of a BAND x WIDTH grey band; None when it is flat."""
    if float(band.std()) < FLAT:
        return None
    low = cv2.dct(band.astype(np.float32))[:ROWS, :COLS].ravel()[1:]  # no DC: brightness says little
    return np.packbits(np.append(low > np.median(low), False)).tobytes()


def page_grey(picture: Picture | np.ndarray) -> np.ndarray:
    """The grey picture scaled to WIDTH px wide; bands are cut from it (area averaging keeps thin text).

    One resize serves every band: a band of this small copy is the area average of the same band
    of the picture, since band tops fall on whole rows of it.
    """
    grey = picture.grey if isinstance(picture, Picture) else picture
    height = max(1, round(grey.shape[0] * WIDTH / grey.shape[1]))
    return cv2.resize(grey, (WIDTH, height), interpolation=cv2.INTER_AREA)


def stored_codes(grey: np.ndarray) -> list[bytes | None]:
    """One code per stored band slot (``OFFSETS``); None where the band is flat or off the page."""
    return [band_code(grey[top: top + BAND]) if top + BAND <= len(grey) else None for top in OFFSETS]


def probe_codes(grey: np.ndarray) -> list[bytes]:
    """The query's bands at every STEP from its top (at most MAX_PROBES), flat ones left out.

    A page shorter than a band offers itself whole, stretched to a band: a short stored page
    got no band code, so this probe only finds the bands of longer pages it is the top of.
    """
    if len(grey) < BAND:
        grey = cv2.resize(grey, (WIDTH, BAND), interpolation=cv2.INTER_AREA)
    tops = range(0, len(grey) - BAND + 1, STEP)[:MAX_PROBES]
    codes = (band_code(grey[top: top + BAND]) for top in tops)
    return [c for c in codes if c is not None]


def query_probes(picture: Picture) -> list[bytes]:
    """The query's band codes: the page as it is, mirrored, and, when a frame is found, the page
    inside it and the page around it (:func:`masked`)."""
    grey = page_grey(picture)
    pages = [grey, grey[:, ::-1]]
    found = boxes(picture.grey)  # innermost lines' box first, then the outermost's
    if found:
        left, top, right, bottom = found[-1]  # a window: the page is inside its outermost frame
        pages.append(page_grey(picture.grey[top:bottom, left:right]))
        pages.append(page_grey(masked(picture.grey, found[0])))  # a dialog: the innermost box
    return [code for page in pages for code in probe_codes(page)]


def masked(grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``grey`` with ``box`` filled with the median grey level around it.

    Why: a consent dialog or cookie sheet over the dimmed page covers the middle of every band,
    so no band of the query keeps its page's code. At a band code's resolution (a 64-pixel-wide
    page), a paragraph of text is an even grey; filled with the page's own level, the dialog's
    bands come closer to the page's than with the dialog's white box in them (measured on the
    calibration sites' wide consent sheets: the nearest band of the true page from 16-24 differing
    bits of 64 to 6-18). The sign code ignores the dimming (a gain and an offset). The box is the
    one the innermost frame lines make: a dialog is in the middle, inside the page's own rules.
    """
    left, top, right, bottom = box
    outside = np.ones(grey.shape, bool)
    outside[top:bottom, left:right] = False
    out = grey.copy()
    out[top:bottom, left:right] = int(np.median(grey[outside])) if outside.any() else 0
    return out

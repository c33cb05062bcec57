"""Find the page inside a frame (window, desktop, browser chrome) so the prefilter can hash it.

Why: a sandbox report shows the page shrunk into a window on a desktop with a task bar;
a browser screenshot adds a tab strip and address bar. The global codes (pHash, dHash,
PDQ) of such a picture are those of the frame as much as of the page, so the true
reference often falls out of the shortlist. Hashing the page region as well, as extra
query codes, gives the reference a close code again; stored codes stay as they are.

How: frames are bounded by long straight, axis-aligned edges (window borders, title-bar
and task-bar edges, the chrome's bottom line) that web content rarely has across most
of the picture. On a half-size grey copy, horizontal and vertical grey steps above
``STEP`` are kept where they form a straight run of at least ``MIN_RUN`` of the picture's
width (height): a morphological opening with a line kernel (the classic way to extract
ruled lines (e.g. OpenCV's "Extract horizontal and vertical lines by using morphological
operations" tutorial; here a sliding-window count, which is the same test and
~10x faster than an opening with a kernel this long). Lines near each side are frame candidates; the box takes, per
side, the line closest to the centre within the outer ``MARGIN`` of the picture, so a
title bar or browser chrome is cut away with the desktop. When a page has its own long
rule near a side (a header bar), the crop also cuts into the page; the crop is only an
*extra* query code, so the whole picture's codes still find what they found before.
A second box uses the outermost lines instead (window without title-bar trimming).
Boxes smaller than ``MIN_AREA`` of the picture, or equal to it, are not offered.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from engine.picture import Picture

STEP = 16  # grey levels: a frame border is a clear step (desktop / bar vs page)
MIN_RUN = 0.45  # share of the picture's width (height) a straight edge must span
MARGIN = 0.35  # frame lines are looked for within this share of each side
MIN_AREA = 0.3  # a box smaller than this share of the picture is not a page
MIN_CUT = 0.02  # a box must cut at least this share of a side, else it is the whole picture


def boxes(grey: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Candidate page boxes (left, top, right, bottom) in ``grey``'s pixels, most trimmed first."""
    return [(2 * a, 2 * b, 2 * c, 2 * d) for a, b, c, d in _boxes(_half(grey))]


def _half(grey: np.ndarray) -> np.ndarray:
    return cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA)


def _boxes(small: np.ndarray, modes: tuple[bool, ...] = (True, False)) -> list[tuple[int, int, int, int]]:
    height, width = small.shape
    rows = _lines(small, axis=0)
    cols = _lines(small.T, axis=0)
    found = []
    for inner in modes:  # innermost lines first, then outermost
        near, far = (max, min) if inner else (min, max)
        top = near([y for y in rows if y < MARGIN * height], default=0)
        bottom = far([y for y in rows if y > (1 - MARGIN) * height], default=height)
        left = near([x for x in cols if x < MARGIN * width], default=0)
        right = far([x for x in cols if x > (1 - MARGIN) * width], default=width)
        box = (left, top, right, bottom)
        if _plausible(box, width, height) and box not in found:
            found.append(box)
    return found


def crops(picture: Picture, modes: tuple[bool, ...] = (True, False)) -> list[Picture]:
    """The picture cut to each candidate box, as half-size grey pictures (the query's extra codes).

    Half size: the prefilter hashes shrink to 8 x 8 .. 64 x 64 cells anyway, and hashing a
    quarter of the pixels makes the crops' codes ~4x cheaper (bits drift slightly from the
    full-size hash of the same crop; the prefilter tolerates that).
    """
    small = _half(picture.grey)
    out = []
    for left, top, right, bottom in _boxes(small, modes):
        image = Image.fromarray(np.ascontiguousarray(small[top:bottom, left:right]), mode="L")
        out.append(Picture(image, picture.sha256, image.width, image.height, picture.format))
    return out


def _lines(grey: np.ndarray, axis: int) -> list[int]:
    """Positions (between row i-1 and i -> i) of straight horizontal edges spanning MIN_RUN.

    A row holds such an edge when some window of ``run`` consecutive pixels all step by more
    than STEP: a sliding-window sum over a cumulative sum (linear time, vectorised).
    """
    step = np.abs(np.diff(grey.astype(np.int16), axis=axis)) > STEP
    run = max(3, int(MIN_RUN * grey.shape[1]))
    total = np.diff(cv2.integral(step.astype(np.uint8)), axis=0)  # row-wise cumulative sums
    full = (total[:, run:] - total[:, :-run]) == run
    return (np.flatnonzero(full.any(axis=1)) + 1).tolist()


def _plausible(box: tuple[int, int, int, int], width: int, height: int) -> bool:
    left, top, right, bottom = box
    area = (right - left) * (bottom - top)
    cut = max(left / width, top / height, 1 - right / width, 1 - bottom / height)
    return right > left and bottom > top and area >= MIN_AREA * width * height and cut >= MIN_CUT

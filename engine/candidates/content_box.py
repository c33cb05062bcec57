"""Find the page inside a frame (window, desktop, browser chrome) so the prefilter can hash it.

Why: a sandbox report shows the page shrunk into a window on a desktop with a task bar;
a browser screenshot adds a tab strip and address bar. The global codes (pHash, dHash,
PDQ) of such a picture are those of the frame as much as of the page, so the true
reference often falls out of the shortlist. Hashing the page region as well, as extra
query codes, gives the reference a close code again; stored codes stay as they are.

How: frames are bounded by long straight, axis-aligned edges (window borders, title-bar
and task-bar edges, the chrome's bottom line). On a half-size grey copy, rows (columns)
are kept where grey steps above ``STEP`` form a straight run of at least ``MIN_RUN`` of
the picture's width (height) — the test of a morphological opening with a line kernel,
the classic way to extract ruled lines (OpenCV tutorial "Extract horizontal and vertical
lines by using morphological operations"), done as a sliding-window count over an
integral image, ~10x faster than an opening with a kernel this long. Lines within the
outer ``MARGIN`` of each side are frame candidates. Two boxes are possible per side: the
line nearest the centre (``inner``) or nearest the border (``outer``). Measured on
eval-full (benchmarks/candidate_recall.py), the outer box is the one to use: web pages
have long rules of their own (header bars, sidebars) that the inner box cuts into.
The box is only an *extra* query probe, so the whole picture's codes still find what they
found before. Boxes smaller than ``MIN_AREA`` of the picture, or cutting less than
``MIN_CUT`` of every side, are not offered.
"""

from __future__ import annotations

import cv2
import numpy as np

STEP = 16  # grey levels: a frame border is a clear step (desktop / bar vs page)
MIN_RUN = 0.45  # share of the picture's width (height) a straight edge must span
MARGIN = 0.35  # frame lines are looked for within this share of each side
MIN_AREA = 0.3  # a box smaller than this share of the picture is not a page
MIN_CUT = 0.02  # a box must cut at least this share of a side, else it is the whole picture
MIN_SIDE = 32  # pixels: a picture smaller than this on a side has no frame worth looking for


def boxes(grey: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Candidate page boxes (left, top, right, bottom) in ``grey``'s pixels, most trimmed first."""
    if min(grey.shape) < MIN_SIDE:
        return []
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


def frame_box(grey: np.ndarray) -> tuple[int, int, int, int] | None:
    """The outermost frame's box (left, top, right, bottom) in ``grey``'s pixels; None without a frame."""
    if min(grey.shape) < MIN_SIDE:
        return None
    found = _boxes(_half(grey), (False,))
    return tuple(2 * v for v in found[0]) if found else None  # type: ignore[return-value]


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

"""The Goldberg image signature exactly as image-match computes it.

Wong, Bern, Goldberg, "An image signature for any kind of image" (ICIP 2002).
The reference is image-match 1.1.2 (PyPI; ``image_match/goldberg.py``),
``ImageSignature().generate_signature`` with its defaults. image-match pins
scikit-image < 0.13, which does not install on current Python, so this module
repeats its numpy operations one for one (same functions, same order, float64),
which makes the signature bit for bit the one image-match gives for the same
RGB pixels (``tests/test_conformance_goldberg.py`` checks it against image-match
itself run with current scikit-image, and against recorded outputs):

1. grey = scikit-image's ``rgb2gray``: RGB * (1 / 255), weights 0.2125, 0.7154, 0.0721;
2. crop: cumulative sums of the absolute differences along rows and columns;
   the limits are where those arrays reach their own 5th and 95th percentiles
   (``np.percentile`` of the cumulative array, then ``np.searchsorted``); the
   whole 5-95 % band of the picture when the limits cross;
3. a 9x9 grid of points inside the crop; around each point the mean grey of a
   P x P square, P = max(2, int(0.5 + min(height, width) / 20)) of the whole
   picture, starting at ``int(max(point - P / 2, 0))``;
4. per point, centre minus each of its 8 neighbours (0 off the grid);
5. |difference| < 2/255 -> 0; positive differences binned at their 0th, 50th
   and 100th percentiles into 1 and 2, negative ones into -1 and -2 (in place,
   in image-match's order, so its edge cases are kept too).

Decoding, as image-match's in-memory path (``bytestream=True``) does it: the
picture as Pillow opens it, ``convert("RGB")``: no EXIF rotation, transparency
dropped (not flattened), 16-bit channels reduced by Pillow. Inside quaid the
algorithm sees the engine's normalised picture (EXIF applied, transparency on
white, working size); ``quaid hash`` decodes as image-match does.

Distance: image-match's ``normalized_distance`` ||a - b|| / (||a|| + ||b||);
image-match calls < 0.40 a match and uses 0.45 as its search cut-off.
"""

from __future__ import annotations

import numpy as np

from engine.algorithms.base import Algorithm, check_length
from engine.picture import Picture

GRID = 9
FEATURE_BYTES = GRID * GRID * 8
IDENTICAL = 2 / 255  # image-match's identical_tolerance on [0, 1] grey
PERCENTILES = (5, 95)  # image-match's crop_percentiles
LUMA = (0.2125, 0.7154, 0.0721)  # scikit-image rgb2gray (Rec.709 primaries)


class Goldberg(Algorithm):
    name = "goldberg"
    yes_threshold = 0.40
    maybe_threshold = 0.45
    cost = 2
    orientable = True
    enabled_by_default = False  # the defaults use goldberg-screen, calibrated on screenshots
    version = 2

    def extract(self, picture: Picture) -> bytes:
        return signature(picture.rgb).tobytes()

    def distance(self, a: bytes, b: bytes) -> float:
        check_length(self.name, a, FEATURE_BYTES)
        check_length(self.name, b, FEATURE_BYTES)
        va = np.frombuffer(a, dtype=np.int8).astype(int)
        vb = np.frombuffer(b, dtype=np.int8).astype(int)
        norms = np.linalg.norm(va) + np.linalg.norm(vb)
        if norms == 0:
            return 0.0  # two featureless (flat) pictures
        return float(np.linalg.norm(vb - va) / norms)


def signature(rgb: np.ndarray) -> np.ndarray:
    """image-match's 648 int8 signature of an H x W x 3 uint8 picture (or H x W grey levels in [0, 1])."""
    grey = rgb_to_grey(rgb) if rgb.ndim == 3 else np.asarray(rgb, dtype=np.float64)
    rows, columns = crop_limits(grey)
    ys = np.linspace(rows[0], rows[1], GRID + 2, dtype=int)[1:-1]
    xs = np.linspace(columns[0], columns[1], GRID + 2, dtype=int)[1:-1]
    differences = _differences(_mean_levels(grey, ys, xs))
    _quantise_in_place(differences)
    return np.ravel(differences).astype(np.int8)


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """scikit-image's ``rgb2gray`` of uint8 RGB: float64 in [0, 1]."""
    scaled = np.asarray(rgb[..., :3], dtype=np.uint8).astype(np.float64) * (1.0 / 255)
    return scaled @ np.array(LUMA, dtype=np.float64)


def crop_limits(grey: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """(top, bottom), (left, right): image-match's ``crop_image`` with its defaults."""
    row_activity = np.cumsum(np.sum(np.abs(np.diff(grey, axis=1)), axis=1))
    column_activity = np.cumsum(np.sum(np.abs(np.diff(grey, axis=0)), axis=0))
    rows = _limits(row_activity, grey.shape[0])
    columns = _limits(column_activity, grey.shape[1])
    return rows, columns


def _limits(cumulative: np.ndarray, size: int) -> tuple[int, int]:
    low_pct, high_pct = PERCENTILES
    high = int(np.searchsorted(cumulative, np.percentile(cumulative, high_pct), side="left"))
    low = int(np.searchsorted(cumulative, np.percentile(cumulative, low_pct), side="right"))
    if low > high:  # nearly featureless: image-match's default band
        return int(low_pct / 100.0 * size), int(high_pct / 100.0 * size)
    return low, high


def _mean_levels(grey: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Mean grey of the P x P square at each grid point (P from the whole picture's short side)."""
    side = max(2.0, int(0.5 + min(grey.shape) / 20.0))
    levels = np.zeros((ys.shape[0], xs.shape[0]))
    for i, y in enumerate(ys):
        top = int(max(y - side / 2, 0))
        bottom = int(min(top + side, grey.shape[0]))
        for j, x in enumerate(xs):
            left = int(max(x - side / 2, 0))
            right = int(min(left + side, grey.shape[1]))
            levels[i, j] = np.mean(grey[top:bottom, left:right])
    return levels


#: Neighbour offsets (row, column) in image-match's order: upper left, up, upper right,
#: left, right, lower left, down, lower right.
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _differences(levels: np.ndarray) -> np.ndarray:
    """GRID x GRID x 8: centre minus neighbour, 0 where the neighbour is off the grid.

    ``a - b`` rounds to exactly ``-(b - a)``, so this equals image-match's negated
    ``np.diff`` arrays bit for bit.
    """
    n = levels.shape[0]
    out = np.zeros((n, n, len(NEIGHBOURS)))
    for k, (dy, dx) in enumerate(NEIGHBOURS):
        rows = slice(max(0, -dy), n - max(0, dy))
        columns = slice(max(0, -dx), n - max(0, dx))
        shifted = levels[max(0, dy):n + min(0, dy), max(0, dx):n + min(0, dx)]
        out[rows, columns, k] = levels[rows, columns] - shifted
    return out


def _quantise_in_place(diff: np.ndarray, levels: int = 2) -> None:
    """image-match's ``normalize_and_threshold``, same steps, same order."""
    mask = np.abs(diff) < IDENTICAL
    diff[mask] = 0.0
    if np.all(mask):
        return
    positive = _cutoffs(diff[diff > 0.0], np.linspace(0, 100, levels + 1))
    negative = _cutoffs(diff[diff < 0.0], np.linspace(100, 0, levels + 1))
    for level in range(len(positive) - 1):
        low, high = positive[level], positive[level + 1]
        diff[(diff >= low) & (diff <= high)] = level + 1
    for level in range(len(negative) - 1):
        high, low = negative[level], negative[level + 1]
        diff[(diff <= high) & (diff >= low)] = -(level + 1)


def _cutoffs(values: np.ndarray, percentiles: np.ndarray) -> np.ndarray:
    """``np.percentile``; none when there are no values (image-match would bin nothing)."""
    if values.size == 0:
        return np.empty(0)
    return np.percentile(values, percentiles)

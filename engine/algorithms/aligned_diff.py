"""How much of two aligned pictures' content differs: the measure that separates "modified copy" from
"another page of the same site".

Measured on rendered pages: a phishing edit (banner, changed heading) changes roughly 0.3-1.4 %
of a page's pixels; another page on the same template changes 2 % or more.
Pixel shares depend on how much of a page is white, so this module counts
*content cells* instead: the thumbnail is cut into CELL x CELL squares, a cell
counts when it holds structure (ink) in either picture or its brightness
differs, and it *differs* when enough of its pixels differ after alignment.
The result is the share of counted cells that differ.

Each cell is compared under the alignment model that explains it best (a
banner splits a page into two rigid parts). Pixels are compared with a one-pixel
tolerance band (the other picture's 3x3 local min and max, as in the
"min-max" tolerant difference used for rendering regression tests), so
resampling and sub-pixel misalignment do not count as change. A global
gain/offset fitted on the overlap absorbs brightness and contrast changes.
Cells outside the overlap are not counted: a frame around the page, a scrolled
out part or a cropped border is missing content, not different content.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CELL = 16  # thumbnail pixels (~40 working-size pixels: two lines of body text)
PIXEL_TOLERANCE = 40  # grey levels beyond the tolerance band that make a pixel differ
INK_STD = 10.0  # grey-level standard deviation above which a cell holds structure
DIFFERING_PIXELS = 0.04  # share of a cell's pixels that must differ for the cell to differ
MIN_VALID = 0.9  # share of a cell that must lie inside the overlap to be compared
MIN_GAIN = 0.3  # a page dimmed behind a modal dialog keeps a third of its contrast or more
STEP = 3  # the grey-level fit samples every STEP-th pixel of every STEP-th row (sparser changes verdicts)
_KERNEL = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class Difference:
    """``share``: counted cells that differ; ``coverage``: share of the first picture's cells compared.

    ``changed`` and ``content``: the grid of differing cells and of counted cells (rows x cols,
    in the first picture's frame), where :mod:`engine.algorithms.changed_regions` reads the layout
    of a change; None when nothing was compared.
    """

    share: float
    counted: int
    differing: int
    coverage: float
    changed: np.ndarray | None = None
    content: np.ndarray | None = None
    strength: np.ndarray | None = None  # per cell: share of its pixels that differ (inf outside the overlap)
    mean_gap: np.ndarray | None = None  # per cell: difference of the mean grey levels once aligned
    gain: float = 1.0  # grey-level gain that maps the second picture onto the first (a dimmed page: < 1)
    offset: float = 0.0  # ... and the offset that goes with it (first model's fit)


def cell_stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell mean and standard deviation of a thumbnail (what :func:`difference` needs of ``a``).

    A query's thumbnail is compared with a whole shortlist: computed once, passed as ``a_stats``.
    """
    rows, cols = a.shape[0] // CELL, a.shape[1] // CELL
    return _cell_stats(a[: rows * CELL, : cols * CELL], rows, cols)


def difference(a: np.ndarray, b: np.ndarray, models: list[np.ndarray],
               a_stats: tuple[np.ndarray, np.ndarray] | None = None,
               levels: tuple[float, float] | None = None, tolerance: int = PIXEL_TOLERANCE) -> Difference:
    """Compare grey thumbnail ``a`` with ``b`` seen through each model (2x3, a's pixels -> b's pixels).

    ``a_stats``: ``cell_stats(a)`` when already known. ``levels``: the gain and offset
    to map b's grey levels onto a's, when already fitted (on the same pair at
    another resolution); else fitted here, per model. ``tolerance``: grey levels
    beyond the tolerance band that make a pixel differ.
    """
    rows, cols = a.shape[0] // CELL, a.shape[1] // CELL
    if rows == 0 or cols == 0 or not models:
        return Difference(1.0, 0, 0, 0.0)
    a = a[: rows * CELL, : cols * CELL]
    best_diff = np.full((rows, cols), np.inf)
    best_ink = np.zeros((rows, cols), bool)
    best_mean_gap = np.zeros((rows, cols))
    a_mean, a_std = a_stats if a_stats is not None else _cell_stats(a, rows, cols)
    a_ink = a_std > INK_STD
    first_levels = (1.0, 0.0)
    for index, model in enumerate(models):
        warped, valid = _warp(b, model, a.shape)
        if levels is None:
            warped, fitted = _match_levels(a, warped, valid)
        else:
            warped, fitted = _apply(warped, levels), levels
        if index == 0:
            first_levels = fitted
        diff_share, ink, mean_gap, ok = _compare(a, a_mean, warped, valid, rows, cols, tolerance)
        if index == 0:
            overlap = ok  # the dominant model defines the overlap; others only explain parts of it
        better = ok & (diff_share < best_diff)
        best_diff[better] = diff_share[better]
        best_ink[better] = ink[better]
        best_mean_gap[better] = mean_gap[better]
    counted = overlap & (a_ink | best_ink | (best_mean_gap > tolerance))
    differing = counted & (best_diff > DIFFERING_PIXELS)
    n_counted, n_diff = int(counted.sum()), int(differing.sum())
    # Content cells, not the overlap's area, are the denominator: measured on the generated set
    # (benchmarks/bench_orb.py), dividing by the area narrows the gap between modified copies and
    # other pages (the closest other page drops from 0.28 to 0.10 while a cookie bar stays at 0.10).
    share = n_diff / n_counted if n_counted else 0.0
    return Difference(share, n_counted, n_diff, float(overlap.mean()), differing, counted, best_diff,
                      best_mean_gap, *first_levels)


def _cell_mean(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean of each CELL x CELL cell (area resampling is exact when the size divides)."""
    return cv2.resize(x.astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA)


def _cell_stats(x: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell mean and standard deviation."""
    xf = x.astype(np.float32)
    mean = _cell_mean(xf, rows, cols)
    square = _cell_mean(xf * xf, rows, cols)
    return mean, np.sqrt(np.maximum(square - mean * mean, 0.0))


def _warp(b: np.ndarray, model: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``b`` resampled into a's frame, and where it is defined.

    The defined part is the preimage of b's rectangle, a convex quadrilateral:
    drawn as a polygon rather than warped as a second picture (half the cost).
    """
    size = (shape[1], shape[0])
    warped = cv2.warpAffine(b, model, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    height, width = b.shape
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5], [-0.5, height - 0.5]])
    inverse = cv2.invertAffineTransform(model)
    polygon = corners @ inverse[:, :2].T + inverse[:, 2]
    valid = np.zeros(shape, np.uint8)
    # pixel centres are at integer coordinates (as in warpAffine); vertices in 1/16 pixel (shift=4)
    cv2.fillConvexPoly(valid, np.round(polygon * 16).astype(np.int32), 255, cv2.LINE_8, 4)
    return warped, cv2.erode(valid, _KERNEL) > 0


def _match_levels(a: np.ndarray, warped: np.ndarray,
                  valid: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Map warped onto a's grey levels with a gain and offset fitted robustly on the overlap; the fit."""
    sampled = valid[::STEP, ::STEP]
    xa = a[::STEP, ::STEP][sampled].astype(np.float64)  # whole grey levels: the fit's sums are exact
    xw = warped[::STEP, ::STEP][sampled].astype(np.float64)
    if len(xa) < 50 or xw.std() < 1.0:
        return warped, (1.0, 0.0)
    gain, offset = _best_fit(xa, xw)
    if not MIN_GAIN <= gain <= 1 / MIN_GAIN or (abs(gain - 1.0) < 0.02 and abs(offset) < 2.0):
        return warped, (1.0, 0.0)
    return _apply(warped, (gain, offset)), (gain, offset)


def _apply(warped: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
    """``warped`` under a gain and offset (saturated to 0-255); unchanged under the identity."""
    gain, offset = levels
    return warped if (gain, offset) == (1.0, 0.0) else cv2.convertScaleAbs(warped, alpha=gain, beta=offset)


def _best_fit(xa: np.ndarray, xw: np.ndarray) -> tuple[float, float]:
    """The gain and offset (xa ~ gain * xw + offset) under which the most samples agree.

    Three robust fits compete: from the identity (a page whose dark parts agree
    already), from plain least squares (a global colour change), and the
    inverse of the fit of ``xw`` on ``xa`` (regressing a mostly white page on
    its dimmed copy fits a constant; the other way round is well posed).
    """
    fits = [_robust_fit(xa, xw, False), _robust_fit(xa, xw, True)]
    if xa.std() >= 1.0:
        back_gain, back_offset = _robust_fit(xw, xa, True)
        if back_gain > 1e-3:
            fits.append((1.0 / back_gain, -back_offset / back_gain))
    fits = [(g, o) for g, o in fits if MIN_GAIN <= g <= 1 / MIN_GAIN] or [(1.0, 0.0)]
    return max(fits, key=lambda fit: int((np.abs(xa - (fit[0] * xw + fit[1])) < PIXEL_TOLERANCE).sum()))


def _robust_fit(xa: np.ndarray, xw: np.ndarray, from_least_squares: bool) -> tuple[float, float]:
    """Gain and offset with xa ~ gain * xw + offset, reweighted to the samples that agree with the fit.

    Iteratively reweighted least squares: only samples that already agree within
    PIXEL_TOLERANCE vote, so a banner or a cookie bar (large dark outliers)
    cannot bend the fit and hide the page's own text.
    """
    gain, offset = _fit(xa, xw) if from_least_squares else (1.0, 0.0)
    voters = None
    for _ in range(3):
        keep = np.abs(xa - (gain * xw + offset)) < PIXEL_TOLERANCE
        if voters is not None and np.array_equal(keep, voters):
            break  # the same voters give the same fit: converged
        if keep.sum() < 50 or xw[keep].std() < 1.0:
            break
        gain, offset = _fit(xa[keep], xw[keep])
        voters = keep
    return gain, offset


def _fit(xa: np.ndarray, xw: np.ndarray) -> tuple[float, float]:
    """Least-squares xa ~ gain * xw + offset, from the normal equations' four sums.

    The samples are whole grey levels in float64, so the sums are exact; the
    callers fit only samples whose ``xw`` varies (std >= 1), so ``spread`` > 0.
    """
    n = len(xa)
    sum_w, sum_a = float(xw.sum()), float(xa.sum())
    spread = n * float((xw * xw).sum()) - sum_w * sum_w  # not np.dot: BLAS may wake threads
    gain = (n * float((xw * xa).sum()) - sum_w * sum_a) / spread
    return gain, (sum_a - gain * sum_w) / n


def _compare(a: np.ndarray, a_mean: np.ndarray, warped: np.ndarray, valid: np.ndarray, rows: int, cols: int,
             tolerance: int):
    """Per cell: share of differing pixels, warped has ink, mean gap, and cell inside the overlap."""
    high = cv2.dilate(warped, _KERNEL)
    low = cv2.erode(warped, _KERNEL)
    excess = cv2.max(cv2.subtract(a, high), cv2.subtract(low, a))  # saturating uint8 arithmetic
    differs = (excess > tolerance) & valid
    diff_share = _cell_mean(differs.view(np.uint8), rows, cols)
    ok = _cell_mean(valid.view(np.uint8), rows, cols) >= MIN_VALID
    w_mean, w_std = _cell_stats(warped, rows, cols)
    return diff_share, w_std > INK_STD, np.abs(a_mean - w_mean), ok

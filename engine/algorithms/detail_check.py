"""A second look at an aligned pair at the picture's working resolution: is any word different?

Why: the verifier's thumbnail (long side 512) shows body text as grey blobs, and
its tolerance band (a pixel differs only outside the other picture's 3x3 local
minimum and maximum) lets any line of text pass for any other. Two pages of
one template that differ in a function's name, a flag letter or a version
number then differ in no cell at all, and were accepted as the same picture.
At the working resolution (DETAIL_SIDE, two and a half times the thumbnail's)
glyphs are resolved: replacing one word by another of the same font moves
enough pixels out of the band to mark its cell.

The check runs on pairs the thumbnail comparison found nearly identical and
with no rewritten region (:func:`engine.algorithms.orb.Orb.compare`): it can
only add the reason ``same-template``, never change the distance, so the
verifier's calibrated thresholds keep their meaning.

What it must not mistake for rewritten text:

- *another resolution*: a capture downscaled by a sandbox, or a small
  recompressed copy, has no glyph detail; comparing it with a sharp original
  would mark every line. Both pictures are compared at the lower of their two
  resolutions (the alignment's scale says which).
- *resampling*: a copy rescaled by a few per cent blurs every stroke a
  little, and JPEG rings around them. A pixel differs only beyond a wider
  grey-level tolerance than the thumbnail's, and wider still for a pair at
  another scale (RESAMPLED_TOLERANCE) than for a pair at the same scale
  (SAME_SCALE_TOLERANCE), which is where sibling pages are: captured by one
  browser at one window size.
- *what the thumbnail already explained*: a banner, a consent dialog over the
  dimmed page, a line cut at the overlap's edge. Their boxes are left out (and
  the overlap's outermost cells, where a line is cut at the detail's grid),
  and the grey-level fit of the thumbnail comparison (a dimmed page) is
  reused rather than fitted again on the detail pictures.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.algorithms import aligned_diff
from engine.algorithms.changed_regions import explain

DETAIL_SIDE = 1280  # width of the stored detail picture: the working size, nothing resampled
# Measured on the calibration sites' pairs the thumbnail accepts (a 1280-px and a 1024-px detail
# picture, tolerances 40/64/96, cell shares 0.06-0.15): these caught 42 of 45 wrong pairs (the rest
# differ only under a consent dialog) and sent 2.7 % of right ones to review.
SAME_SCALE_TOLERANCE, SAME_SCALE_CHANGE = 64, 0.10  # grey levels, share of a cell's pixels ...
RESAMPLED_TOLERANCE, RESAMPLED_CHANGE = 96, 0.08  # ... and when one picture is resampled onto the other
SAME_SCALE = 0.02  # a pair whose alignment scale is this close to 1 is at the same scale
COMMON_RESOLUTION = 0.05  # beyond this scale difference the sharper picture is reduced first
_BOX_KERNEL = np.ones((3, 3), np.uint8)


def detail_picture(grey: np.ndarray) -> np.ndarray:
    """The stored detail picture: the grey picture ORB verifies, at most DETAIL_SIDE px wide."""
    return fit_width(grey, DETAIL_SIDE)


def fit_width(grey: np.ndarray, width: int) -> np.ndarray:
    """``grey`` at most ``width`` pixels wide (area averaging keeps text's ink; never enlarged)."""
    factor = width / grey.shape[1]
    return _reduced(grey, factor) if factor < 1.0 else np.ascontiguousarray(grey)


def rewritten(a: np.ndarray, b: np.ndarray, models: list[np.ndarray],
              coarse_ab: aligned_diff.Difference, coarse_ba: aligned_diff.Difference) -> bool:
    """Whether detail pictures ``a`` and ``b`` differ in a cell the thumbnail comparison did not explain.

    ``models``: the alignment (2x3, a's detail pixels -> b's detail pixels);
    ``coarse_ab``, ``coarse_ba``: the thumbnail comparison in both directions.
    """
    backward = [cv2.invertAffineTransform(m) for m in models]
    return _changed(a, b, models, coarse_ab) or _changed(b, a, backward, coarse_ba)


def _changed(a: np.ndarray, b: np.ndarray, models: list[np.ndarray], coarse: aligned_diff.Difference) -> bool:
    """One direction: a changed cell of ``a``'s frame outside the explained boxes."""
    if coarse.changed is None or not models:
        return False
    scale = float(np.sqrt(abs(np.linalg.det(models[0][:, :2]))))
    a, b, models = _common_resolution(a, b, models, scale)
    same_scale = abs(scale - 1.0) <= SAME_SCALE
    tolerance, limit = (SAME_SCALE_TOLERANCE, SAME_SCALE_CHANGE) if same_scale else (RESAMPLED_TOLERANCE,
                                                                                     RESAMPLED_CHANGE)
    detail = aligned_diff.difference(a, b, models, levels=(coarse.gain, coarse.offset), tolerance=tolerance)
    if detail.changed is None or detail.strength is None or detail.content is None:
        return False
    inside = np.isfinite(detail.strength)
    changed = inside & detail.content & (np.where(inside, detail.strength, 0.0) > limit)
    return bool((changed & ~_explained_boxes(coarse, changed.shape) & ~_edges(inside)).any())


def _edges(inside: np.ndarray) -> np.ndarray:
    """The overlap's outermost rows and columns: a line of text cut by a scroll, a banner or a crop.

    At the thumbnail's resolution a cut line is explained as an edge region; at the
    detail's it is cut across a cell the thumbnail never saw as changed.
    """
    edges = np.zeros_like(inside)
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if len(rows) and len(cols):
        edges[[rows[0], rows[-1]], :] = True
        edges[:, [cols[0], cols[-1]]] = True
    return edges


def _common_resolution(a: np.ndarray, b: np.ndarray, models: list[np.ndarray],
                       scale: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Reduce the sharper picture to the other's resolution; the models follow."""
    if scale < 1.0 - COMMON_RESOLUTION:  # b is the smaller: reduce a; a's pixels shrink by `scale`
        a = _reduced(a, scale)
        return a, b, [np.hstack([m[:, :2] / scale, m[:, 2:]]) for m in models]
    if scale > 1.0 + COMMON_RESOLUTION:  # a is the smaller: reduce b; b's pixels shrink by 1 / scale
        b = _reduced(b, 1.0 / scale)
        return a, b, [m / scale for m in models]
    return a, b, models


def _reduced(picture: np.ndarray, factor: float) -> np.ndarray:
    size = (max(1, round(picture.shape[1] * factor)), max(1, round(picture.shape[0] * factor)))
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)


def _explained_boxes(coarse: aligned_diff.Difference, shape: tuple[int, int]) -> np.ndarray:
    """The bounding boxes of the regions the thumbnail comparison explained, on the detail grid.

    Boxes rather than cells: a dialog's button or a banner's border is a weak
    change at the thumbnail's resolution (not part of the region) and a strong
    one at the detail's.
    """
    assert coarse.changed is not None and coarse.strength is not None
    assert coarse.content is not None and coarse.mean_gap is not None
    found = explain(coarse.changed, coarse.strength, coarse.content, coarse.mean_gap, coarse.gain, True)
    boxes = np.zeros(coarse.changed.shape, np.uint8)
    if found.explained is not None and found.explained.any():
        joined = cv2.dilate(found.explained.astype(np.uint8), _BOX_KERNEL)  # explain() bridges one cell
        count, labels = cv2.connectedComponents(joined, connectivity=8)
        for label in range(1, count):
            rows, cols = np.nonzero((labels == label) & found.explained)
            boxes[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = 1
    grid = cv2.resize(boxes, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return cv2.dilate(grid, _BOX_KERNEL) > 0

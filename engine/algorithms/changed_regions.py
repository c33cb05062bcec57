"""Where two aligned pictures differ: the distinct changed regions and how far they spread.

Why: the share of differing content cells (:mod:`engine.algorithms.aligned_diff`)
cannot tell a phishing edit from another page of the same template. A kit
injects one banner or rewrites one heading: one compact region. Two pages of
a command reference or an API reference differ in their title, their summary
and their body: several regions spread down the content column, or one region
as tall as the content. Counting connected components of differing cells
(8-connected, after bridging gaps of GAP cells so that the lines of one
paragraph make one region) and measuring the rows they span tells them apart
where the share alone does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GAP = 1  # cells: changed cells this close belong to one region (a paragraph's lines, a heading's words)
MIN_REGION_CELLS = 2  # smaller components are resampling noise (one cell of a scaled glyph), not a change


@dataclass(frozen=True)
class ChangedRegions:
    """``count``: regions of at least MIN_REGION_CELLS cells; ``spread``: share of the content's rows
    (top to bottom of the counted cells) that lie between the first and the last changed row;
    ``largest``: cells of the largest region."""

    count: int
    spread: float
    largest: int

    @classmethod
    def none(cls) -> ChangedRegions:
        return cls(0, 0.0, 0)


def changed_regions(changed: np.ndarray | None, content: np.ndarray | None) -> ChangedRegions:
    """The regions of ``changed`` (bool grid of differing cells) within ``content`` (counted cells)."""
    if changed is None or content is None or not changed.any():
        return ChangedRegions.none()
    size = 2 * GAP + 1
    bridged = cv2.dilate(changed.astype(np.uint8), np.ones((size, size), np.uint8))
    count, labels = cv2.connectedComponents(bridged, connectivity=8)
    cells = np.bincount(labels[changed], minlength=count)[1:]  # changed cells per region (0 = background)
    kept = np.flatnonzero(cells >= MIN_REGION_CELLS) + 1
    if not len(kept):
        return ChangedRegions.none()
    rows = np.flatnonzero(np.isin(labels, kept).any(axis=1) & changed.any(axis=1))
    content_rows = np.flatnonzero(content.any(axis=1))
    height = content_rows[-1] - content_rows[0] + 1 if len(content_rows) else changed.shape[0]
    spread = (rows[-1] - rows[0] + 1) / height
    return ChangedRegions(len(kept), float(min(1.0, spread)), int(cells.max()))

"""What explains the regions where two aligned pictures differ: an added block, or rewritten content.

Why: the share of differing content cells (:mod:`engine.algorithms.aligned_diff`)
cannot tell a modified copy from another page of the same template. Two pages of
a command reference or an API reference differ in a few words of their title
and summary; a copy made by a phishing kit or a capture adds a block (a banner,
a consent dialog over the dimmed page). Regions are the connected components of
strongly changed cells (8-connected, after bridging gaps of GAP cells so that
the lines of one paragraph make one region); :func:`explain` reads each one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GAP = 1  # cells: changed cells this close belong to one region (a paragraph's lines, a heading's words)


# --------------------------------------------------------------------------- what explains a change

STRONG_CHANGE = 0.10  # share of a cell's pixels that differ for a strong change (replaced text, a new block)
STRIP_WIDTH = 0.6  # a banner or cookie bar spans at least this share of the content's width ...
STRIP_HEIGHT = 0.3  # ... and at most this share of its height
SOLID = 0.5  # share of its bounding box a banner or a dialog fills with changed cells
DIMMED = 0.75  # a grey-level gain this far from 1 (either way) is a page dimmed behind a dialog
FILLED = 0.5  # share of a banner's cells whose mean grey level moved by FILL_GAP or more: its own background
FILL_GAP = 20.0  # grey levels
MAX_EXPLAINED = 0.5  # beyond this share of the picture's cells, added blocks are another page


@dataclass(frozen=True)
class Explanation:
    """How the strongly changed regions of an aligned pair read.

    ``explained``: cells of regions that a modified copy adds (a banner or
    cookie bar on its own background, a dialog over the dimmed page) or that
    lie on the overlap's outermost row or column (a line of text cut by a
    scroll or a crop, a sticky header over the scrolled page);
    ``rewritten``: the other regions (a heading, a paragraph, another page's
    content); ``kinds``: the explained regions' kinds, in order.
    """

    explained: np.ndarray | None
    rewritten: int
    kinds: tuple[str, ...]


def explain(changed: np.ndarray | None, strength: np.ndarray | None, content: np.ndarray | None,
            mean_gap: np.ndarray | None, gain: float, dialog_seen: bool = False) -> Explanation:
    """Sort the strongly changed regions of one direction of an aligned pair into explained and rewritten.

    Why: a phishing kit or a capture adds a block (a banner or cookie bar on its
    own background, a consent dialog over a dimmed page); a sibling page of the
    same template *rewrites* text in place (its title, summary, body), or has a
    longer or shorter text where the other page is blank. Any change of content
    other than an added block is what pixels cannot tell from another page, so
    it never counts as "the same picture": the caller sends such pairs to
    review with the reason ``same-template`` (an edited heading or an image that
    did not load goes to review too). Regions are the 8-connected components of strongly
    changed cells (over STRONG_CHANGE of their pixels differ) after bridging
    gaps of GAP cells; one strongly changed cell is a region: two pages that
    differ in one short name differ in one cell at the thumbnail's resolution.

    A dialog is one solid box over a page dimmed as a whole (the fitted ``gain``
    far from 1) with its own background. Seen from the bright picture, the
    dimmed copy's levels are stretched and the dialog's white background
    saturates into the page's white: only its text differs. ``dialog_seen``
    (the other direction of the pair found the dialog on its own background)
    accepts such a box there too.
    """
    if changed is None or strength is None or content is None or mean_gap is None:
        return Explanation(None, 0, ())
    strong = changed & (strength > STRONG_CHANGE)
    explained = np.zeros_like(changed)
    if not strong.any():
        return Explanation(explained, 0, ())
    size = 2 * GAP + 1
    bridged = cv2.dilate(strong.astype(np.uint8), np.ones((size, size), np.uint8))
    count, labels = cv2.connectedComponents(bridged, connectivity=8)
    content_rows = np.flatnonzero(content.any(axis=1))
    content_cols = np.flatnonzero(content.any(axis=0))
    height = content_rows[-1] - content_rows[0] + 1 if len(content_rows) else changed.shape[0]
    width = content_cols[-1] - content_cols[0] + 1 if len(content_cols) else changed.shape[1]
    dimmed = not DIMMED <= gain <= 1 / DIMMED
    inside = np.isfinite(strength)  # the overlap: strength is infinite where the pictures do not overlap
    overlap_rows, overlap_cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    edge_rows = {overlap_rows[0], overlap_rows[-1]} if len(overlap_rows) else set()
    edge_cols = {overlap_cols[0], overlap_cols[-1]} if len(overlap_cols) else set()
    rewritten, kinds = 0, []
    for label in range(1, count):
        region = (labels == label) & changed
        rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
        box_h, box_w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        solid = region.sum() / (box_h * box_w) >= SOLID
        filled = float((mean_gap[region] >= FILL_GAP).mean()) >= FILLED
        if set(rows) <= edge_rows or set(cols) <= edge_cols:
            kind = "edge"
        elif solid and filled and box_w >= STRIP_WIDTH * width and box_h <= STRIP_HEIGHT * height:
            kind = "banner"
        elif solid and dimmed and (filled or dialog_seen) and "dialog" not in kinds:
            kind = "dialog"
        else:
            rewritten += 1
            continue
        explained |= region
        kinds.append(kind)
    if explained.sum() > MAX_EXPLAINED * explained.size:
        return Explanation(np.zeros_like(changed), rewritten + len(kinds), ())
    return Explanation(explained, rewritten, tuple(kinds))

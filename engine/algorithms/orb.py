"""ORB keypoint verification: align two pictures, then measure how much of their content differs.

Where to start: :meth:`Orb.distance`. Steps:

1. ORB keypoints and 256-bit descriptors (Rublee, Rabaud, Konolige, Bradski
   2011, "ORB: an efficient alternative to SIFT or SURF"), spread over the
   picture with a grid so a dense block of text cannot take them all;
2. Lowe ratio test and sequential RANSAC similarity models
   (:mod:`engine.algorithms.alignment`);
3. the share of content cells that differ once aligned
   (:mod:`engine.algorithms.aligned_diff`), in both directions, the larger kept;
4. what explains the strongly changed regions (:func:`unexplained`,
   :func:`engine.algorithms.changed_regions.explain`): blocks a copy adds (a
   banner on its own background, a dialog over the dimmed page, a line cut at
   the overlap's edge) do not count; content rewritten in place (a heading,
   a paragraph, another page of the template) gives the reason
   ``"same-template"``, which keeps the pair out of ``accepted`` whatever its
   distance (:meth:`Orb.compare`);
5. for a pair that looks nearly identical on the thumbnail, a second look at
   twice its resolution (:mod:`engine.algorithms.detail_check`): one word
   replaced by another also gives ``"same-template"``.

A query whose page sits in a window frame (a sandbox report, a desktop
screenshot) offers that page as a second view (:meth:`Orb.query_features`);
the search keeps the view with the strongest vote
(:func:`engine.matching.strongest`).

The distance is the share of content cells that differ outside the explained
blocks, in [0, 1]: 0 for identical pictures, a few hundredths for a copy with a
frame, a scroll or recompression, and 0.28 or more for another page built on
the same template. No alignment (too
few inliers, a degenerate fit) gives 1.0. Pictures with almost no keypoints
(blank or flat pages) are compared by their thumbnails directly.

Cost (``benchmarks/bench_orb.py``, one core): extraction 42 ms on a 1280x800
screenshot, distance 8.7 ms a pair (both directions, thumbnails decoded);
:meth:`Orb.rank` about 0.5 ms. ORB verifies a shortlist, never a scan: a
search ranks every shortlisted candidate with :meth:`Orb.rank` and verifies them in
that order within a budget (:meth:`engine.matching.Matcher.compare_shortlist`).
Mirrored copies match only through the query's orientations
(``all_orientations``): ORB descriptors are not mirror-invariant.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import cv2
import numpy as np

from engine.algorithms import aligned_diff, detail_check
from engine.algorithms.alignment import align, invert, rescale
from engine.algorithms.base import Algorithm, Comparison
from engine.algorithms.changed_regions import explain
from engine.algorithms.detail_check import detail_picture, fit_width
from engine.algorithms.orb_feature import OrbFeature, pack, unpack
from engine.candidates.content_box import frame_box
from engine.picture import GREY_THUMBNAIL_SIDE, Picture

MAX_KEYPOINTS = 600  # kept per picture (40 bytes each); matching cost grows with the square
DETECT_KEYPOINTS = 8000  # detected (ORB keeps the strongest over the whole picture) before the grid
# keeps the strongest of each cell; with fewer, dense article text starves a header of keypoints
GRID = 8  # the picture is cut into GRID x GRID cells for keypoint spreading
ORB_SIDE = 1280  # pixels of width of the picture ORB sees
ORB_TALL = 1.6  # a taller picture is verified on its top ORB_TALL widths (two and a half 16:10 screens)
RESCALE_FROM = 1.15  # rescale only beyond this (a 0.8 frame capture is, a 6 % crop is not)
MAX_ENLARGE = 2.5  # a tiny picture is not blown up into a large one
MIN_KEYPOINTS = 16  # fewer: a blank/flat picture, compared by thumbnail instead
MIN_COVERAGE = 0.15  # share of a thumbnail that must overlap the other picture
RANK_GRID = 8  # rank(): inliers are counted per cell of a RANK_GRID x RANK_GRID grid of the query
RANK_CELL_CAP = 3  # ... at most this many per cell
RANK_KEYPOINTS = 300  # rank() matches the query's first (grid-spread) keypoints only: half the work
RANK_ITERATIONS = 200  # RANSAC iterations for rank(): a copy's matches are mostly inliers
SAME_TEMPLATE = "same-template"  # the reason given for a pair that must go to review
DETAIL_BELOW = 0.16  # pairs this close get the detail check (above, the verifier rejects them anyway)
FRAMED_WIDTH = 0.9  # a frame narrower than this share of the picture shows the page at another scale


class Orb(Algorithm):
    """Keypoint alignment plus aligned content difference; the costly verifier of the shortlist."""

    name: ClassVar[str] = "orb"
    # Measured with benchmarks/bench_orb.py --separation (576 modified copies, 336 pairs of other pages
    # of six template sites): closest other page 0.28; copies: median 0.02, banner <= 0.11,
    # cookie bar <= 0.30 (see the module docstring).
    yes_threshold: ClassVar[float] = 0.20
    maybe_threshold: ClassVar[float] = 0.35
    cost: ClassVar[int] = 1000
    hamming_bits: ClassVar[int | None] = None
    orientable: ClassVar[bool] = True  # mirrors need the query extracted mirrored
    version: ClassVar[int] = 2  # 2: the feature carries the detail picture

    def __init__(self) -> None:
        self._orb = cv2.ORB_create(
            nfeatures=DETECT_KEYPOINTS, scaleFactor=1.2, nlevels=8, edgeThreshold=19,
            patchSize=19, fastThreshold=10,
        )

    def extract(self, picture: Picture) -> bytes:
        grey = verified_part(picture.grey)
        canonical, factor = canonical_scale(grey)
        # OpenCV's ORB pyramid asserts on pictures smaller than its border (a 1x1 picture):
        # such pictures have no keypoints anyway.
        keypoints = self._orb.detect(canonical, None) if min(canonical.shape) > 2 * 19 else []
        limit = round(MAX_KEYPOINTS * max(1.0, canonical.shape[0] / canonical.shape[1]))  # a tall part: more
        keypoints = spread(keypoints, canonical.shape, limit)
        keypoints, descriptors = self._orb.compute(canonical, keypoints) if keypoints else ([], None)
        if descriptors is None or not keypoints:
            points = np.empty((0, 2), np.float32)
            descriptors = np.empty((0, 32), np.uint8)
        else:
            points = cv2.KeyPoint_convert(keypoints) / factor
        whole_landscape = grey.shape == picture.grey.shape and grey.shape[0] <= grey.shape[1]
        thumbnail = picture.grey_thumbnail if whole_landscape else fit_width(grey, GREY_THUMBNAIL_SIDE)
        return pack(grey.shape[1], grey.shape[0], points, descriptors, thumbnail, detail_picture(grey))

    def query_features(self, picture: Picture, orientations: bool = False) -> list[bytes]:
        """The query's own feature(s), then the page inside its window frame, when one is found.

        Why: a sandbox report or a desktop screenshot shows the page shrunk into a
        window (to 0.5-0.9 of its size). Brought to the canonical width as a whole,
        the page's text lands between two of ORB's pyramid levels (a factor 1.2
        apart) and few descriptors match: the pair is neither ranked nor aligned.
        The page inside the frame (:func:`engine.candidates.content_box.frame_box`),
        brought to the canonical width on its own, is at its stored scale again.
        Only frames narrower than FRAMED_WIDTH of the picture count: a frame
        found on a page's own header rules spans the width and changes no scale.
        """
        features = super().query_features(picture, orientations)
        box = frame_box(picture.grey)
        if box is not None and box[2] - box[0] <= FRAMED_WIDTH * picture.width:
            features.append(self.extract(picture.cropped(box)))
        return features

    def distance(self, a: bytes, b: bytes) -> float:
        return self.compare(a, b).distance

    def distance_within(self, a: bytes, b: bytes, bound: float) -> float:
        return self.compare(a, b, bound).distance

    def compare(self, a: bytes, b: bytes, bound: float | None = None) -> Comparison:
        """The aligned content difference, and ``"same-template"`` when its layout is a sibling page's.

        ``bound``: the distance is the larger of both directions, so one
        direction above ``bound`` settles it: a sibling page rejected by the
        verifier costs one pixel comparison instead of two.
        """
        if a > b:  # matching and RANSAC are not symmetric; a fixed order makes the distance so
            a, b = b, a
        fa, fb = unpack(a), unpack(b)
        if len(fa.points) < MIN_KEYPOINTS or len(fb.points) < MIN_KEYPOINTS:
            return Comparison(flat_distance(fa, fb))
        alignment = align(fa.points, fa.descriptors, fb.points, fb.descriptors)
        if not alignment.models:
            return Comparison(1.0)
        forward = [rescale(m, fa.thumb_scale, fb.thumb_scale) for m in alignment.models]
        ab = aligned_diff.difference(fa.thumb, fb.thumb, forward, fa.cell_stats)
        lenient = unexplained(ab, dialog_seen=True)  # the most lenient reading: a lower bound
        if bound is not None and lenient.share > bound:
            return Comparison(float(min(1.0, lenient.share)))  # the distance is at least this
        ba = aligned_diff.difference(fb.thumb, fa.thumb, [invert(m) for m in forward], fb.cell_stats)
        if max(ab.coverage, ba.coverage) < MIN_COVERAGE:
            return Comparison(1.0)
        first, second = unexplained(ab), unexplained(ba)
        if "dialog" in first.kinds:  # a dialog seen on its own background from one side
            second = unexplained(ba, dialog_seen=True)
        elif "dialog" in second.kinds:
            first = lenient
        distance = float(min(1.0, max(first.share, second.share)))
        same_template = bool(first.rewritten or second.rewritten)
        if not same_template and distance <= DETAIL_BELOW:
            da, db = fa.detail(), fb.detail()
            models = [rescale(m, da.shape[1] / fa.width, db.shape[1] / fb.width) for m in alignment.models]
            same_template = detail_check.rewritten(da, db, models, ab, ba)
        return Comparison(distance, SAME_TEMPLATE if same_template else None)

    def rank(self, query: bytes, stored: bytes) -> float:
        """How much of the query the strongest alignment explains: inliers counted per grid cell, capped.

        Costs a fifth of a verification (the keypoint match and one RANSAC model,
        no pixels). It orders a shortlist so the verification budget goes first
        to the candidates that share the most *geometrically consistent*
        structure with the query, as retrieval systems re-rank a shortlist by
        spatial verification (Philbin et al. 2007, "Object retrieval with large
        vocabularies and fast spatial matching"). Only the query's first
        RANK_KEYPOINTS keypoints take part: they are stored grid-spread round-robin,
        so they cover the whole picture. Counting at most RANK_CELL_CAP
        inliers per cell of a RANK_GRID x RANK_GRID grid is what separates a copy
        from its sibling pages: siblings align only their shared template (header,
        menu, sidebar: few cells, many inliers each), a copy aligns its content
        too. Measured on ``tests/test_shortlist.py``'s template site: copies 42
        and 40, siblings 31 (all 600 keypoints: 66 and 111 against 31 to 35; 200:
        a tie); plain inlier counts put the siblings first.
        Returns a share of the RANK_GRID**2 * RANK_CELL_CAP maximum.
        """
        fq, fs = unpack(query), unpack(stored)
        if len(fq.points) < MIN_KEYPOINTS or len(fs.points) < MIN_KEYPOINTS:
            return 1.0 - flat_distance(fq, fs)
        count = min(RANK_KEYPOINTS, len(fq.points))
        anchors = align(fq.points[:count], fq.descriptors[:count], fs.points, fs.descriptors,
                        max_models=1, iterations=RANK_ITERATIONS, refine=0).anchors
        if not len(anchors):
            return 0.0
        row = np.clip((anchors[:, 1] * RANK_GRID / fq.height).astype(int), 0, RANK_GRID - 1)
        col = np.clip((anchors[:, 0] * RANK_GRID / fq.width).astype(int), 0, RANK_GRID - 1)
        per_cell = np.bincount(row * RANK_GRID + col, minlength=RANK_GRID * RANK_GRID)
        return float(np.minimum(per_cell, RANK_CELL_CAP).sum()) / (RANK_GRID * RANK_GRID * RANK_CELL_CAP)


def verified_part(grey: np.ndarray) -> np.ndarray:
    """What ORB sees of a picture: all of it, or the top ORB_TALL widths of a taller one.

    A full-page capture is many screens tall; what identifies the page, and what a
    viewport capture of it shows, is its first screens. Verifying the whole height
    would spread the keypoints over screens no viewport capture holds.
    """
    limit = max(1, round(ORB_TALL * grey.shape[1]))
    return grey[:limit] if grey.shape[0] > limit else grey


def canonical_scale(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """The picture at ORB_SIDE wide (enlarged at most MAX_ENLARGE times), and the factor.

    Detecting at one canonical scale brings a down-scaled copy back to the size
    of its original, so both show their text at the same pyramid levels; small
    fonts otherwise fall between levels and stop matching. The width, not the
    long side: a viewport capture and the top of the full-page capture of the
    same page are equally wide (the verified part is at most ORB_TALL widths tall).
    """
    factor = min(ORB_SIDE / grey.shape[1], MAX_ENLARGE)
    if 1.0 / RESCALE_FROM <= factor <= RESCALE_FROM:  # within one pyramid step: leave it (crops, frames)
        return grey, 1.0
    size = (max(1, round(grey.shape[1] * factor)), max(1, round(grey.shape[0] * factor)))
    method = cv2.INTER_LINEAR if factor > 1 else cv2.INTER_AREA
    return cv2.resize(grey, size, interpolation=method), factor


def spread(keypoints, shape: tuple[int, int], limit: int) -> list:
    """Keep the strongest keypoints of each grid cell in turn (round-robin), at most ``limit`` in all.

    Plain top-N by response puts every keypoint on the densest text block;
    spreading them keeps the header, the content and the footer all alignable.
    """
    if len(keypoints) <= limit:
        return list(keypoints)
    height, width = shape
    xy = cv2.KeyPoint_convert(keypoints)  # in C++: a Python loop over 8 000 keypoints costs 5 ms
    response = np.array([kp.response for kp in keypoints], np.float32)
    row = np.minimum((xy[:, 1] * GRID / height).astype(int), GRID - 1)
    col = np.minimum((xy[:, 0] * GRID / width).astype(int), GRID - 1)
    cell = row * GRID + col
    # Stable sorts keep the order of the previous one among equal keys, so sorting the
    # strongest-first order by cell gives "per cell, strongest first" (np.lexsort's order, but
    # lexsort on float keys is 3x slower than a float sort plus radix sorts of small integers).
    strongest = np.argsort(-response, kind="stable")
    by_cell = strongest[np.argsort(cell[strongest].astype(np.int16), kind="stable")]
    sorted_cells = cell[by_cell]
    first = np.searchsorted(sorted_cells, sorted_cells)  # index where each cell's run starts
    rank = np.empty(len(keypoints), np.int32)
    rank[by_cell] = np.arange(len(keypoints)) - first
    # round-robin: every cell's strongest, then every cell's second strongest, ...
    chosen = strongest[np.argsort(rank[strongest], kind="stable")][:limit]
    return [keypoints[i] for i in chosen]


def flat_distance(fa: OrbFeature, fb: OrbFeature) -> float:
    """Pictures without keypoints: mean grey difference of the thumbnails at a common size, in [0, 1].

    Two blank pages of one colour are the same; a blank page against a page
    with content (which has keypoints) is not.
    """
    if (len(fa.points) < MIN_KEYPOINTS) != (len(fb.points) < MIN_KEYPOINTS):
        return 1.0
    size = (32, 32)
    ta = cv2.resize(fa.thumb, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    tb = cv2.resize(fb.thumb, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    return float(min(1.0, np.abs(ta - tb).mean() / 64.0))


class Reading(NamedTuple):
    """One direction of a compared pair: the unexplained share, rewritten regions, explained kinds."""

    share: float
    rewritten: int
    kinds: tuple[str, ...]


def unexplained(diff: aligned_diff.Difference, dialog_seen: bool = False) -> Reading:
    """The share of content cells that differ outside explained regions, and the rewritten regions.

    Explained regions (:func:`engine.algorithms.changed_regions.explain`: a
    banner or a dialog over the dimmed page, a line cut at the edge) are what a
    modified copy adds; they do not count towards the distance. A rewritten
    region (content replaced in place: a heading, a paragraph, another page's
    text on the same template) makes the pair ``same-template``, which keeps it
    out of ``accepted`` whatever its distance.
    """
    if diff.changed is None or diff.counted == 0:
        return Reading(diff.share, 0, ())
    found = explain(diff.changed, diff.strength, diff.content, diff.mean_gap, diff.gain, dialog_seen)
    if found.explained is None:
        return Reading(diff.share, found.rewritten, ())
    left = int((diff.changed & ~found.explained).sum())
    return Reading(left / diff.counted, found.rewritten, found.kinds)

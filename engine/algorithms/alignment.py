"""Align two pictures from their ORB keypoints: ratio-tested matches, then RANSAC similarity models.

Why a similarity (4 degrees of freedom: scale, rotation, translation,
``cv2.estimateAffinePartial2D``) rather than a full homography: copies of a
screenshot differ by scrolling, a frame, a crop and down-scaling, copies of a
photo by scale, crop and a small rotation; none of these changes perspective.
A homography's 8 degrees of freedom fit repeated text glyphs into degenerate,
folded solutions, which a similarity cannot express.

Why several models: a phishing kit's banner or a cookie bar pushes the page
content down while the header stays, so one picture holds two rigid parts.
Models are found one after another (sequential RANSAC, as in Vincent &
Laganière 2001, "Detecting planar homographies in an image pair"): fit, remove
the inliers, fit again on the rest. Each part of the picture is later compared
under the model that explains it best.

Matching: Lowe's ratio test (Lowe 2004, "Distinctive image features from
scale-invariant keypoints", section 7.1) on the two nearest Hamming neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

RATIO = 0.8  # Lowe's ratio; ORB on text needs the looser end, repeated glyphs fail it anyway
REPROJECTION_PX = 4.0  # RANSAC inlier tolerance, working-size pixels of the second picture
MIN_INLIERS = 10  # first model; fewer and the pictures share no rigid part worth comparing
MIN_EXTRA_INLIERS = 8  # every further model
MAX_MODELS = 4
RANSAC_ITERATIONS = 1000  # at most; OpenCV stops once 99 % confident
MIN_SCALE, MAX_SCALE = 0.2, 5.0  # beyond: a degenerate fit, not a copy
MAX_ROTATION_DEG = 60.0


@dataclass(frozen=True)
class Alignment:
    """Similarity models mapping the first picture's working pixels to the second's.

    ``models`` are 2x3 float64 matrices, strongest first; ``inliers`` their support;
    ``matches`` the number of ratio-test matches they were fitted on; ``anchors`` the
    first picture's points that the strongest model explains (n x 2, empty without model).
    """

    models: tuple[np.ndarray, ...]
    inliers: tuple[int, ...]
    matches: int
    anchors: np.ndarray

    @property
    def total_inliers(self) -> int:
        return sum(self.inliers)


try:  # faiss's binary flat k-NN is ~6x faster than OpenCV's BFMatcher.knnMatch on 600 x 600 descriptors
    import faiss

    faiss.omp_set_num_threads(1)  # one pair is ~0.5 ms of work: waking OpenMP workers costs more
except ImportError:  # pragma: no cover - faiss-cpu is a dependency; OpenCV is the fallback
    faiss = None

_MATCHER = cv2.BFMatcher(cv2.NORM_HAMMING)


def two_nearest(desc_a: np.ndarray, desc_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hamming distances and indices (n x 2 each) of the two rows of ``desc_b`` nearest to each of ``desc_a``.

    Both backends give the same distances; they may order equally distant
    neighbours differently, which the ratio test cannot see (a tie fails it).
    """
    if faiss is not None:  # a heap scan over b, no index built (a third faster for 600 x 600)
        return faiss.knn_hamming(np.ascontiguousarray(desc_a), np.ascontiguousarray(desc_b), 2)
    pairs = _MATCHER.knnMatch(desc_a, desc_b, k=2)
    distances = np.array([[m.distance for m in pair] for pair in pairs], dtype=np.int32).reshape(-1, 2)
    indices = np.array([[m.trainIdx for m in pair] for pair in pairs], dtype=np.int64).reshape(-1, 2)
    return distances, indices


def ratio_matches(desc_a: np.ndarray, desc_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into a, into b) of the matches that pass the ratio test."""
    if len(desc_a) < 2 or len(desc_b) < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    distances, indices = two_nearest(desc_a, desc_b)
    passed = distances[:, 0] < RATIO * distances[:, 1]
    return np.flatnonzero(passed).astype(np.int64), indices[passed, 0].astype(np.int64)


def align(points_a: np.ndarray, desc_a: np.ndarray, points_b: np.ndarray, desc_b: np.ndarray,
          max_models: int = MAX_MODELS, iterations: int = RANSAC_ITERATIONS) -> Alignment:
    """Match, then find up to ``max_models`` similarity models by sequential RANSAC."""
    ia, ib = ratio_matches(desc_a, desc_b)
    src = points_a[ia].astype(np.float32)
    dst = points_b[ib].astype(np.float32)
    models: list[np.ndarray] = []
    inliers: list[int] = []
    anchors = np.empty((0, 2), np.float32)
    while len(models) < max_models:
        needed = MIN_INLIERS if not models else MIN_EXTRA_INLIERS
        if len(src) < needed:
            break
        model, mask = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_PX,
            maxIters=iterations, confidence=0.99, refineIters=10,
        )
        if model is None or mask is None:
            break
        mask = mask.ravel().astype(bool)
        support = int(mask.sum())
        if support < needed or not plausible(model):
            break
        if not models:
            anchors = src[mask]
        if not any(_same_model(model, m) for m in models):
            models.append(model)
            inliers.append(support)
        src, dst = src[~mask], dst[~mask]
    return Alignment(tuple(models), tuple(inliers), len(ia), anchors)


def plausible(model: np.ndarray) -> bool:
    """Reject degenerate fits: absurd scale or a large rotation."""
    scale = float(np.hypot(model[0, 0], model[1, 0]))
    angle = float(np.degrees(np.arctan2(model[1, 0], model[0, 0])))
    finite = bool(np.isfinite(model).all())
    return finite and MIN_SCALE <= scale <= MAX_SCALE and abs(angle) <= MAX_ROTATION_DEG


def invert(model: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine map."""
    return cv2.invertAffineTransform(model)


def rescale(model: np.ndarray, scale_a: float, scale_b: float) -> np.ndarray:
    """The model in thumbnail coordinates: x_b' = s_b * M(x_a' / s_a)."""
    out = model.astype(np.float64).copy()
    out[:, :2] *= scale_b / scale_a
    out[:, 2] *= scale_b
    return out


def _same_model(m1: np.ndarray, m2: np.ndarray) -> bool:
    """Two fits of one rigid part (linear parts and translations within a few pixels)."""
    return bool(np.abs(m1[:, :2] - m2[:, :2]).max() < 0.02 and np.abs(m1[:, 2] - m2[:, 2]).max() < 3.0)

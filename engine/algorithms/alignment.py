"""Align two pictures from their ORB keypoints: ratio-tested matches, then RANSAC similarity models.

Why a similarity (4 degrees of freedom: scale, rotation, translation,
``cv2.estimateAffinePartial2D``) rather than a full homography: copies of a
screenshot differ by scrolling, a frame, a crop and down-scaling, copies of a
photo by scale, crop and a small rotation; none of these changes perspective.
A homography's 8 degrees of freedom fit repeated text glyphs into degenerate,
folded solutions, which a similarity cannot express.

Why several models: a phishing kit's banner or a cookie bar pushes the page
content down while the header stays, so one picture holds two rigid parts.
Further models share the first one's scale and rotation (only their
translation differs): a part that moved, not a part re-fitted onto other text.
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
REFINE_ITERATIONS = 10  # Levenberg-Marquardt steps on a model's inliers (the inlier mask stays RANSAC's)
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


try:  # faiss computes a 600 x 600 Hamming distance matrix with AVX-512 popcounts in ~0.1 ms
    import faiss

    faiss.omp_set_num_threads(1)  # one pair is ~0.2 ms of work: waking OpenMP workers costs more
except ImportError:  # pragma: no cover - faiss-cpu is a dependency; OpenCV is the fallback
    faiss = None

_MATCHER = cv2.BFMatcher(cv2.NORM_HAMMING)
_FAR = np.int32(1 << 20)  # above any Hamming distance: masks the nearest out of the second search


def two_nearest(desc_a: np.ndarray, desc_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``desc_a``: the Hamming distances to its nearest and second nearest row of
    ``desc_b``, and the index of the nearest.

    The whole distance matrix, then two arg-minimums: with faiss's SIMD
    ``hammings`` kernel this is ~2.3x faster than its heap-based k-NN
    (``knn_hamming``, which keeps a heap per row), for the same distances.
    Equally distant nearest neighbours may be told apart differently by the
    backends; the ratio test cannot see that (a tie fails it).
    """
    if faiss is None:  # pragma: no cover - the fallback
        pairs = _MATCHER.knnMatch(desc_a, desc_b, k=2)
        distances = np.array([[m.distance for m in pair] for pair in pairs], dtype=np.int32).reshape(-1, 2)
        indices = np.array([pair[0].trainIdx for pair in pairs], dtype=np.int64)
        return distances[:, 0], distances[:, 1], indices
    desc_a, desc_b = np.ascontiguousarray(desc_a), np.ascontiguousarray(desc_b)
    matrix = np.empty((len(desc_a), len(desc_b)), np.int32)
    faiss.hammings(faiss.swig_ptr(desc_a), faiss.swig_ptr(desc_b), len(desc_a), len(desc_b),
                   desc_a.shape[1], faiss.swig_ptr(matrix))
    rows = np.arange(len(desc_a))
    nearest = matrix.argmin(axis=1)
    first = matrix[rows, nearest]
    matrix[rows, nearest] = _FAR
    return first, matrix.min(axis=1), nearest


def ratio_matches(desc_a: np.ndarray, desc_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into a, into b) of the matches that pass the ratio test."""
    if len(desc_a) < 2 or len(desc_b) < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    first, second, nearest = two_nearest(desc_a, desc_b)
    passed = first < RATIO * second
    return np.flatnonzero(passed).astype(np.int64), nearest[passed].astype(np.int64)


def align(points_a: np.ndarray, desc_a: np.ndarray, points_b: np.ndarray, desc_b: np.ndarray,
          max_models: int = MAX_MODELS, iterations: int = RANSAC_ITERATIONS,
          refine: int = REFINE_ITERATIONS) -> Alignment:
    """Match, then find up to ``max_models`` similarity models by sequential RANSAC.

    ``refine``: Levenberg-Marquardt iterations on each model's inliers; 0 when
    only the inliers (``anchors``) are wanted, since refining changes the model,
    not which matches RANSAC counted as inliers (half of RANSAC's cost).
    """
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
            maxIters=iterations, confidence=0.99, refineIters=refine,
        )
        if model is None or mask is None:
            break
        mask = mask.ravel().astype(bool)
        support = int(mask.sum())
        if support < needed or not plausible(model):
            break
        if not models:
            anchors = src[mask]
        if not any(_same_model(model, m) for m in models) and (not models or _same_linear(model, models[0])):
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


def _same_linear(m1: np.ndarray, m2: np.ndarray) -> bool:
    """The same scale and rotation (within 3 %), whatever the translation.

    A further model explains a part of the picture that moved rigidly (the page
    below an injected banner, a sticky header): the same page at the same scale,
    shifted. A further model that turns or scales differently fits repeated text
    glyphs onto other text, and would "explain" another page's content.
    """
    return _linear_gap(m1, m2) < 0.03


def _same_model(m1: np.ndarray, m2: np.ndarray) -> bool:
    """Two fits of one rigid part (linear parts and translations within a few pixels)."""
    return _linear_gap(m1, m2) < 0.02 and bool(np.abs(m1[:, 2] - m2[:, 2]).max() < 3.0)


def _linear_gap(m1: np.ndarray, m2: np.ndarray) -> float:
    """The largest difference between the linear (scale and rotation) parts of two models."""
    return float(np.abs(m1[:, :2] - m2[:, :2]).max())

"""ForBild exactly as its reference computes it, with the weighted second stage.

Steinebach, Liu, Yannikos, "ForBild: efficient robust image hashing" (SPIE
Media Watermarking, Security, and Forensics 2012). Reference: the open
implementation pazifical/forbild-hashing at commit 37b28ca (Rust, ``image``
0.23.14), whose own test vector ``tests/test_conformance_forbild.py`` reproduces:

1. grey with the ``image`` crate's truncated Rec.709 luma, shrunk to 16x16 with
   its Gaussian resize (:mod:`engine.algorithms.image_rs`);
2. mirrored so that the quadrant holding the brightest pixel is top-left
   (quadrants tried top-left, bottom-left, top-right, bottom-right; the first
   holding the maximum wins; bottom-left flips rows, top-right flips columns);
3. per 8x8 quadrant the median is the 33rd of its 64 sorted values, and a bit
   is 1 where the pixel is >= its quadrant's median: 256 bits, row-major.

Comparison (the crate's ``hashmath.rs``, the paper's two stages): Hamming
distance HD <= 8 is a match; otherwise the weighted distance
WD = Var(D) / Var(S) * HD * 1000, where Var(D) and Var(S) are the mean squared
deviations from their quadrant medians of the *first* hash's pixels at the
differing and at the equal bits; WD <= 16 is a match. The crate's WD is not
symmetric (it reads only ``hash1``'s pixels); quaid's distance takes the larger
of the two directions, so a pair matches only when both call it a match and
the distance does not depend on which picture is the query.

Decoding, as the crate's ``image`` 0.23 does it: no EXIF rotation, alpha
ignored (grey of the colour channels), a grey picture used as it is. Inside
quaid the algorithm sees the engine's normalised RGB picture; ``quaid hash``
decodes as the reference does.

Feature: 32 bytes of packed bits (the prefilter code) + the 256 grey pixels.
Distance in [0, 1] keeps both decision points as thresholds:
  HD <= 8      -> 0.05 * HD / 8                        (in [0, 0.05])
  else WD <= 16 -> 0.05 + 0.05 * WD / 16               (in (0.05, 0.10])
  else          -> 0.10 + 0.90 * min(1, log2(WD / 16) / 14)
so YES = 0.10 is exactly "the reference calls it a match" (unrelated pictures
reach WD ~ 10^5, distance ~ 0.9).
"""

from __future__ import annotations

import math

import numpy as np

from engine.algorithms import image_rs
from engine.algorithms.base import Algorithm, check_length
from engine.picture import Picture

SIDE = 16
HALF = SIDE // 2
BITS_BYTES = SIDE * SIDE // 8
FEATURE_BYTES = BITS_BYTES + SIDE * SIDE
HAMMING_MATCH = 8  # bits (paper, crate)
WEIGHTED_MATCH = 16.0  # the crate's WD threshold
LOG_SPAN = 14  # doublings of WD past WEIGHTED_MATCH that reach distance 1


class ForBild(Algorithm):
    name = "forbild"
    yes_threshold = 0.10
    maybe_threshold = 0.25
    cost = 2
    hamming_bits = SIDE * SIDE
    orientable = True
    enabled_by_default = False  # the defaults use forbild-screen, calibrated on screenshots
    version = 2

    def extract(self, picture: Picture) -> bytes:
        return feature(grey16(image_rs.grayscale(picture.rgb)))

    def distance(self, a: bytes, b: bytes) -> float:
        check_length(self.name, a, FEATURE_BYTES)
        check_length(self.name, b, FEATURE_BYTES)
        bits_a, bits_b = unpack_bits(a), unpack_bits(b)
        hamming = int((bits_a != bits_b).sum())
        if hamming <= HAMMING_MATCH:
            return 0.05 * hamming / HAMMING_MATCH
        differ = bits_a != bits_b
        weighted = max(weighted_distance(_pixels(a), differ), weighted_distance(_pixels(b), differ))
        if weighted <= WEIGHTED_MATCH:
            return 0.05 + 0.05 * weighted / WEIGHTED_MATCH
        if not math.isfinite(weighted):
            return 1.0
        return 0.10 + 0.90 * min(1.0, math.log2(weighted / WEIGHTED_MATCH) / LOG_SPAN)


def _pixels(feature_bytes: bytes) -> np.ndarray:
    return np.frombuffer(feature_bytes[BITS_BYTES:], np.uint8).reshape(SIDE, SIDE)


def grey16(grey: np.ndarray) -> np.ndarray:
    """The crate's 16x16 grey of an H x W uint8 grey picture, mirrored by its brightest pixel."""
    return mirror_by_brightest_pixel(image_rs.resize_gaussian(grey, SIDE, SIDE))


def mirror_by_brightest_pixel(small: np.ndarray) -> np.ndarray:
    """The quadrant holding the brightest pixel goes top-left (the crate's ``mirror_by_brightest_pixel``)."""
    # the crate's order: (column 0, row 0), (column 0, row 1), (column 1, row 0), (column 1, row 1)
    maxima = [int(small[r * HALF:(r + 1) * HALF, c * HALF:(c + 1) * HALF].max())
              for c, r in ((0, 0), (0, 1), (1, 0), (1, 1))]
    best, index = 0, 0
    for i, value in enumerate(maxima):
        if value > best:
            best, index = value, i
    if index in (1, 3):
        small = small[::-1, :]
    if index in (2, 3):
        small = small[:, ::-1]
    return np.ascontiguousarray(small)


def quadrant_medians(small: np.ndarray) -> np.ndarray:
    """16x16 array of each pixel's quadrant median (the 33rd of 64 sorted values)."""
    medians = np.empty_like(small)
    for r in (0, HALF):
        for c in (0, HALF):
            medians[r:r + HALF, c:c + HALF] = np.sort(small[r:r + HALF, c:c + HALF], axis=None)[32]
    return medians


def bits(small: np.ndarray) -> np.ndarray:
    """The 256 hash bits, row-major: pixel >= its quadrant median."""
    return (small >= quadrant_medians(small)).ravel()


def feature(small: np.ndarray) -> bytes:
    return np.packbits(bits(small)).tobytes() + small.astype(np.uint8).tobytes()


def unpack_bits(feature_bytes: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(feature_bytes[:BITS_BYTES], np.uint8)).astype(bool)


def to_hex(feature_bytes: bytes) -> str:
    """The crate's ``to_string_hex``: 256 bits row-major, 4 a digit, most significant first, upper case."""
    return feature_bytes[:BITS_BYTES].hex().upper()


def weighted_distance(small: np.ndarray, differ: np.ndarray) -> float:
    """The crate's ``weighted_distance``: Var(D) / Var(S) * HD * 1000 from the first hash's pixels."""
    differ = np.asarray(differ, dtype=bool).ravel()
    hamming = int(differ.sum())
    if hamming == 0:
        return 0.0
    squares = (quadrant_medians(small).astype(np.int64) - small.astype(np.int64)).ravel() ** 2
    same = squares[~differ].astype(np.float64)
    var_same = float(same.sum()) / same.size if same.size else math.nan
    var_diff = float(squares[differ].sum()) / hamming
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(var_diff) / np.float64(var_same) * 1000.0 * hamming)

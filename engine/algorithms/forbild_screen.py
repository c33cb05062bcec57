"""forbild-screen: a ForBild-like block hash adapted to screenshots.

The hash the ForBild reference computes is :mod:`engine.algorithms.forbild`;
this variant is what the default settings use (its thresholds are calibrated).
It differs from the reference in its grey (Pillow's rounded Rec.601), its
resize (box, blur, box), its mirroring (by the quadrant with the largest sum),
its threshold (above ``np.median``) and its second stage (below).

Steinebach, Liu, Yannikos, "ForBild: efficient robust image hashing" (SPIE
Media Watermarking, Security, and Forensics 2012), built on the block-mean
hash of Yang, Gu, Niu (2006):

1. grey, Gaussian-smoothed down-sample to 16x16 (area to 64x64, Gaussian
   blur, area to 16x16);
2. the four 8x8 quadrants; the picture is mirrored horizontally and/or
   vertically so that the brightest quadrant is top-left (automatic mirror
   invariance);
3. bit = pixel above the median of its quadrant: 256 bits.

Comparison, two stages: Hamming <= 8 bits is a match. Otherwise the paper
weighs the differing bits by how reliable they are: a bit whose pixel lies
close to its quadrant median flips under noise. Our reading, documented
because the paper gives no closed formula for every detail: the weighted
distance W is the sum, over differing bits, of the smaller of the two
pixels' deviations from their quadrant medians, in grey levels of the 16x16
picture; W <= 16 is a match.

Feature: 32 bytes of packed bits (the prefilter code) + 256 bytes of the
pixels' deviations from their quadrant medians (grey levels, clipped to 255).

Distance in [0, 1] keeps both decision points as thresholds:
  Hamming h <= 8        -> 0.05 * h / 8               (in [0, 0.05])
  else W <= 16          -> 0.05 + 0.05 * W / 16        (in (0.05, 0.10])
  else                  -> 0.10 + 0.90 * min(1, log2(W / 16) / 7)
so YES = 0.10 is exactly "the paper calls it a match"; each doubling of W
past 16 adds 0.9/7 (W = 32 -> 0.229; W = 2048, a typical unrelated pair -> 1).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from engine.algorithms.base import Algorithm, check_length
from engine.picture import Picture

SIDE = 16
BITS_BYTES = SIDE * SIDE // 8
FEATURE_BYTES = BITS_BYTES + SIDE * SIDE
HAMMING_MATCH = 8  # bits (paper)
WEIGHTED_MATCH = 16.0  # grey levels summed over differing bits (paper's threshold, our units)
LOG_SPAN = 7  # doublings of W past WEIGHTED_MATCH that reach distance 1


class ForBildScreen(Algorithm):
    name = "forbild-screen"
    former_names = ("forbild",)  # its name until forbild became the reference's
    yes_threshold = 0.10
    maybe_threshold = 0.25  # W up to ~ 34
    cost = 2
    hamming_bits = SIDE * SIDE
    orientable = True

    def extract(self, picture: Picture) -> bytes:
        pixels = _normalised(picture.grey_image)
        medians = np.zeros_like(pixels)
        half = SIDE // 2
        for y in (0, half):
            for x in (0, half):
                medians[y : y + half, x : x + half] = np.median(pixels[y : y + half, x : x + half])
        bits = np.packbits((pixels > medians).ravel()).tobytes()
        deviations = np.clip(np.rint(np.abs(pixels - medians)), 0, 255).astype(np.uint8)
        return bits + deviations.ravel().tobytes()

    def distance(self, a: bytes, b: bytes) -> float:
        check_length(self.name, a, FEATURE_BYTES)
        check_length(self.name, b, FEATURE_BYTES)
        xor = np.frombuffer(a[:BITS_BYTES], np.uint8) ^ np.frombuffer(b[:BITS_BYTES], np.uint8)
        differ = np.unpackbits(xor)
        hamming = int(differ.sum())
        if hamming <= HAMMING_MATCH:
            return 0.05 * hamming / HAMMING_MATCH
        weighted = self.weighted(a, b, differ.astype(bool))
        if weighted <= WEIGHTED_MATCH:
            return 0.05 + 0.05 * weighted / WEIGHTED_MATCH
        return 0.10 + 0.90 * min(1.0, math.log2(weighted / WEIGHTED_MATCH) / LOG_SPAN)

    @staticmethod
    def weighted(a: bytes, b: bytes, differ: np.ndarray) -> float:
        """The second-stage weighted distance W (grey levels) over the differing bits."""
        da = np.frombuffer(a[BITS_BYTES:], np.uint8)[differ].astype(np.float64)
        db = np.frombuffer(b[BITS_BYTES:], np.uint8)[differ].astype(np.float64)
        return float(np.minimum(da, db).sum())


def _normalised(grey: Image.Image) -> np.ndarray:
    """16x16 Gaussian down-sample, mirrored so the brightest quadrant is top-left."""
    small = grey.resize((4 * SIDE, 4 * SIDE), Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(2))
    pixels = np.asarray(small.resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float64)
    half = SIDE // 2
    sums = [[pixels[y : y + half, x : x + half].sum() for x in (0, half)] for y in (0, half)]
    row, column = divmod(int(np.argmax(np.asarray(sums))), 2)
    if column:
        pixels = pixels[:, ::-1]
    if row:
        pixels = pixels[::-1, :]
    return np.ascontiguousarray(pixels)

"""pHash: signs of the low-frequency DCT coefficients against their median (ImageHash ``phash``).

Zauner, "Implementation and Benchmarking of Perceptual Image Hash Functions"
(2010); ImageHash follows Krawetz's variant: grey, 32x32 (hash_size x 4),
2-D DCT, top-left ``hash_size x hash_size`` block compared with its median.
Thresholds 10/64 and 16/64 bits are the customary ones for 64-bit hashes.

ImageHash's own steps, with one substitution: its DCT is ``scipy.fftpack.dct``
(type II, unnormalised), and importing SciPy costs ~0.4 s at the start of
every ``quaid`` process; OpenCV's orthonormal DCT, rescaled to SciPy's
convention, gives the same bits (``tests/test_equivalence.py``; all 510
hashes of eval-small's and drawn pictures at 8 and 16 bits, flat ones included).
"""

from __future__ import annotations

import cv2
import imagehash
import numpy as np

from engine.algorithms._imagehash import ImageHashAlgorithm
from engine.picture import Picture

HIGHFREQ = 4  # ImageHash's highfreq_factor: the DCT runs on a (4 x hash_size) square thumbnail
ZERO = 1e-6  # |coefficient| below this is rounding noise of an exact cancellation


class PHash(ImageHashAlgorithm):
    name = "phash"
    hash_size = 8
    yes_threshold = 10 / 64
    maybe_threshold = 16 / 64
    prefilter = True

    def _hash(self, picture: Picture) -> imagehash.ImageHash:
        side = self.hash_size * HIGHFREQ
        pixels = picture.lanczos_grey(side, side).astype(np.float64)
        low = dct2(pixels)[: self.hash_size, : self.hash_size]
        return imagehash.ImageHash(low > np.median(low))


class PHash256(PHash):
    name = "phash256"
    hash_size = 16
    yes_threshold = 0.15
    maybe_threshold = 0.25
    prefilter = False
    enabled_by_default = False


def dct2(pixels: np.ndarray) -> np.ndarray:
    """2-D DCT-II in SciPy's unnormalised convention (``dct(dct(x, axis=0), axis=1)``) of a square.

    OpenCV's DCT is orthonormal: coefficient k carries sqrt(1/N) (k = 0) or
    sqrt(2/N); SciPy's carries 2 for every k. Hence the per-axis factors.
    Coefficients that cancel exactly (flat or mirror-symmetric regions) come
    out of SciPy as exact zeros but of OpenCV as ~1e-12 noise, which would
    decide bits against a median of 0: they are snapped to 0 (real
    coefficients of 8-bit pixels are far larger than ZERO).
    """
    n = pixels.shape[0]
    scale = np.full(n, 2.0 * np.sqrt(n / 2.0))
    scale[0] = 2.0 * np.sqrt(n)
    out = cv2.dct(np.ascontiguousarray(pixels, dtype=np.float64)) * scale[:, None] * scale[None, :]
    out[np.abs(out) < ZERO] = 0.0
    return out

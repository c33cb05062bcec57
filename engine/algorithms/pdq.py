"""PDQ: Meta's 256-bit perceptual hash (the ``pdqhash`` package, Meta's C++ reference code).

Meta, "The TMK+PDQF Video-Hashing Algorithm and the PDQ Image Similarity
Algorithm" (2019): luminance, Jarosz-filter down-sample to 64x64, 16x16 DCT
block, bits against the median. The feature is the 256 bits packed (32 bytes,
the prefilter code) followed by one byte of PDQ's quality score (0-100): Meta
advises not to trust hashes of quality below 50 (flat, featureless pictures).
Thresholds: Meta's match threshold 31/256 bits is YES; 63/256 is MAYBE.
PDQ computes the eight dihedral hashes from one DCT, so orientations are cheap.

Input: the picture's luma, shrunk (bilinear, Pillow's thumbnail) to at most
PDQ_SIDE px on the long side. The grey copy is shared with the other
algorithms and one channel resizes three times faster than RGB; PDQ's own
luma of a grey picture is that grey (its weights sum to 1), so the hash is
the one of the RGB thumbnail up to the rounding of luma to whole grey levels
(mean 0.2 of 256 bits on eval-small, ``benchmarks/feature_drift.py``).
"""

from __future__ import annotations

import numpy as np
import pdqhash
from PIL import Image

from engine.algorithms.base import Algorithm, check_length, hamming_fraction
from engine.picture import Picture

HASH_BYTES = 32
FEATURE_BYTES = HASH_BYTES + 1
LOW_QUALITY = 50  # Meta: hashes below this quality are unreliable
PDQ_SIDE = 512  # px, long side fed to PDQ: its Jarosz filter keeps 64x64 anyway; 40x faster than 1280


class PDQ(Algorithm):
    name = "pdq"
    yes_threshold = 31 / 256
    maybe_threshold = 63 / 256
    hamming_bits = 256
    prefilter = True
    orientable = True

    def extract(self, picture: Picture) -> bytes:
        bits, quality = pdqhash.compute(_pixels(picture))
        return _pack(bits, quality)

    def extract_orientations(self, picture: Picture) -> list[bytes]:
        hashes, quality = pdqhash.compute_dihedral(_pixels(picture))
        return [_pack(bits, quality) for bits in hashes]

    def distance(self, a: bytes, b: bytes) -> float:
        check_length(self.name, a, FEATURE_BYTES)
        check_length(self.name, b, FEATURE_BYTES)
        return hamming_fraction(a[:HASH_BYTES], b[:HASH_BYTES])

    @staticmethod
    def quality(feature: bytes) -> int:
        """PDQ's quality score (0-100) kept in the feature's last byte."""
        check_length("pdq", feature, FEATURE_BYTES)
        return feature[HASH_BYTES]


def _pixels(picture: Picture) -> np.ndarray:
    """H x W x 3 uint8 (pdqhash wants three channels): the grey thumbnail in each."""
    grey = picture.grey_image
    if max(grey.size) > PDQ_SIDE:
        grey = grey.copy()
        grey.thumbnail((PDQ_SIDE, PDQ_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.repeat(np.asarray(grey, dtype=np.uint8)[:, :, None], 3, axis=2)


def _pack(bits: np.ndarray, quality: int) -> bytes:
    packed = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
    return packed + bytes([max(0, min(100, int(quality)))])

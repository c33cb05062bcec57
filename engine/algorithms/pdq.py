"""PDQ: Meta's 256-bit perceptual hash (the ``pdqhash`` package, Meta's C++ reference code).

Meta, "The TMK+PDQF Video-Hashing Algorithm and the PDQ Image Similarity
Algorithm" (2019): luminance, Jarosz-filter down-sample to 64x64, 16x16 DCT
block, bits against the median. The feature is the 256 bits packed (32 bytes,
the prefilter code) followed by one byte of PDQ's quality score (0-100): Meta
advises not to trust hashes of quality below 50 (flat, featureless pictures).
Thresholds: Meta's match threshold 31/256 bits is YES; 63/256 is MAYBE.
PDQ computes the eight dihedral hashes from one DCT, so orientations are cheap;
:meth:`PDQ.extract_orientations` returns them in the reference's order (original,
rotated 90, 180, 270, flipped vertically, flipped horizontally, the two
transposes), not in :data:`engine.algorithms.base.ORIENTATIONS`' order: a search takes the smallest
distance over them, so only the set matters.

Input: the picture's shared grey thumbnail (``Picture.grey_thumbnail``: luma,
area-averaged to at most 512 px on the long side; the ORB verifier stores the
same one, so a search resizes once). PDQ's Jarosz filter keeps 64x64 anyway,
and 512 px is 40x faster than 1280. PDQ's own luma of a grey picture is that
grey (its weights sum to 1). Against PDQ of the whole picture this input moves
a median 10 of 256 bits, as the former Pillow-bilinear 512-px input did
(the two differ by a median 2, at most 6 bits: 60 screenshots, 10 photos).
The PDQ hash partners exchange is pdqhash on the whole file as ThreatExchange
decodes it (:mod:`engine.exchange`, ``quaid hash``), not this feature.
"""

from __future__ import annotations

import numpy as np
import pdqhash

from engine.algorithms.base import Algorithm, check_length, hamming_fraction
from engine.picture import Picture

HASH_BYTES = 32
FEATURE_BYTES = HASH_BYTES + 1
LOW_QUALITY = 50  # Meta: hashes below this quality are unreliable


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
    return np.repeat(picture.grey_thumbnail[:, :, None], 3, axis=2)


def _pack(bits: np.ndarray, quality: int) -> bytes:
    packed = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
    return packed + bytes([max(0, min(100, int(quality)))])

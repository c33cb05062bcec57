"""PDQ: Meta's 256-bit perceptual hash, exactly as pdqhash computes it on the picture.

Meta, "The TMK+PDQF Video-Hashing Algorithm and the PDQ Image Similarity
Algorithm" (2019): luminance, Jarosz-filter down-sample to 64x64, 16x16 DCT
block, bits against the median. The reference is ``pdqhash`` 0.2.8 (Python
bindings of Meta's C++ code), called as ThreatExchange's ``pdq_hasher`` calls
it: ``pdqhash.compute`` on the H x W x 3 uint8 RGB pixels, PDQ's own luma.

The feature is the 256 bits packed (32 bytes, hash bit 0 first: the prefilter
code) followed by one byte of PDQ's quality score (0-100): Meta advises not to
trust hashes of quality below 50 (flat, featureless pictures). Thresholds:
Meta's match threshold 31/256 bits is YES; 63/256 is MAYBE.

PDQ computes the eight dihedral hashes from one DCT, so orientations are cheap;
:meth:`PDQ.extract_orientations` returns ``pdqhash.compute_dihedral``'s hashes in
its order (original, rotated 90, 180, 270, flipped vertically, flipped
horizontally, the two transposes), not in
:data:`engine.algorithms.base.ORIENTATIONS`' order: a search takes the smallest
distance over them, so only the set matters.

Decoding: inside quaid the algorithm sees the engine's normalised picture (EXIF
orientation applied, transparency flattened on white, 16-bit channels scaled to
8 bits, long side at most the working size); on such pixels it is bit for bit
pdqhash (``tests/test_conformance.py``). The hash partners exchange is pdqhash
on the file as ThreatExchange decodes it (:mod:`engine.exchange`, ``quaid
hash``): no EXIF rotation, grey repeated in three channels, 16-bit refused.
The screenshot variant hashing a small grey thumbnail is
:mod:`engine.algorithms.pdq_screen`.
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
    enabled_by_default = False  # the defaults use pdq-screen: the same decisions at a tenth of the cost
    version = 2  # version 1 hashed the grey thumbnail (now pdq-screen)

    def extract(self, picture: Picture) -> bytes:
        return pack(*pdqhash.compute(picture.rgb))

    def extract_orientations(self, picture: Picture) -> list[bytes]:
        hashes, quality = pdqhash.compute_dihedral(picture.rgb)
        return [pack(bits, quality) for bits in hashes]

    def distance(self, a: bytes, b: bytes) -> float:
        check_length(self.name, a, FEATURE_BYTES)
        check_length(self.name, b, FEATURE_BYTES)
        return hamming_fraction(a[:HASH_BYTES], b[:HASH_BYTES])

    @staticmethod
    def quality(feature: bytes) -> int:
        """PDQ's quality score (0-100) kept in the feature's last byte."""
        check_length("pdq", feature, FEATURE_BYTES)
        return feature[HASH_BYTES]


def pack(bits: np.ndarray, quality: int) -> bytes:
    """The stored feature: 32 bytes of bits (bit 0 the most significant of byte 0), then the quality."""
    packed = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
    return packed + bytes([max(0, min(100, int(quality)))])

"""pHash: signs of the low-frequency DCT coefficients against their median (ImageHash ``phash``).

Zauner, "Implementation and Benchmarking of Perceptual Image Hash Functions"
(2010); ImageHash follows Krawetz's variant: grey, 32x32 (hash_size x 4), 2-D
DCT, top-left ``hash_size x hash_size`` block compared with its median.
Thresholds 10/64 and 16/64 bits are the customary ones (DESIGN.md).
"""

from __future__ import annotations

import imagehash

from engine.algorithms._imagehash import ImageHashAlgorithm, fixed


class PHash(ImageHashAlgorithm):
    name = "phash"
    hash_size = 8
    yes_threshold = 10 / 64
    maybe_threshold = 16 / 64
    prefilter = True
    _hash = fixed(imagehash.phash, highfreq_factor=4)


class PHash256(PHash):
    name = "phash256"
    hash_size = 16
    yes_threshold = 0.15
    maybe_threshold = 0.25
    prefilter = False
    enabled_by_default = False

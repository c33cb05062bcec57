"""aHash: bit = grey level of an 8x8 (or 16x16) thumbnail above its mean (ImageHash ``average_hash``).

The weakest of the ImageHash family (Krawetz, "Looks Like It", 2011): any global
brightness or contrast change moves the mean. Kept for comparison and
calibration, off by default.
"""

from __future__ import annotations

import imagehash
import numpy as np

from engine.algorithms._imagehash import ImageHashAlgorithm
from engine.picture import Picture


class AHash(ImageHashAlgorithm):
    name = "ahash"
    hash_size = 8
    yes_threshold = 10 / 64
    maybe_threshold = 16 / 64
    enabled_by_default = False

    def _hash(self, picture: Picture) -> imagehash.ImageHash:
        pixels = picture.lanczos_grey(self.hash_size, self.hash_size)  # ImageHash's average_hash steps
        return imagehash.ImageHash(pixels > np.mean(pixels))


class AHash256(AHash):
    name = "ahash256"
    hash_size = 16
    yes_threshold = 0.12
    maybe_threshold = 0.20

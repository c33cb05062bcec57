"""wHash: Haar wavelet low band against its median (ImageHash ``whash``).

ImageHash's default ``image_scale`` is the largest power of two below the
picture's short side, so the hash of a resized copy is computed at another
scale; we fix it (64 px for 64 bits, 128 px for 256 bits) so that resized
copies hash alike, and so the cost does not grow with the picture.
"""

from __future__ import annotations

import imagehash

from engine.algorithms._imagehash import ImageHashAlgorithm, fixed


class WHash(ImageHashAlgorithm):
    name = "whash"
    hash_size = 8
    yes_threshold = 10 / 64
    maybe_threshold = 16 / 64
    enabled_by_default = False
    _hash = fixed(imagehash.whash, image_scale=64, mode="haar")


class WHash256(WHash):
    name = "whash256"
    hash_size = 16
    yes_threshold = 0.15
    maybe_threshold = 0.25
    _hash = fixed(imagehash.whash, image_scale=128, mode="haar")

"""wHash: Haar wavelet low band against its median (ImageHash ``whash``).

``whash`` is ImageHash's default (``imagehash.whash(image)``): its
``image_scale`` is the largest power of two not above the picture's short side,
so a resized copy is hashed at another scale. ``whash256`` fixes the scale at
128 px, so that resized copies hash alike and the cost does not grow with the
picture; it has no outside reference.

Decoding: inside quaid both hash the normalised picture (EXIF orientation
applied, transparency flattened on white, 16-bit scaled to 8); ImageHash on the
file, as ``quaid hash`` computes it, applies no EXIF orientation and drops
transparency in its own conversion to grey.
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
    version = 2
    _hash = fixed(imagehash.whash, mode="haar")


class WHash256(WHash):
    name = "whash256"
    hash_size = 16
    yes_threshold = 0.15
    maybe_threshold = 0.25
    version = 1
    _hash = fixed(imagehash.whash, image_scale=128, mode="haar")

"""dHash: sign of horizontal neighbour differences on a 9x8 thumbnail (ImageHash ``dhash``).

Krawetz, "Kind of Like That" (2013). This is ImageHash's 64-bit row hash, not the
``dhash`` package of Ben Hoyt's fingerprint-database tutorial (9x9 grey, a row and a
column hash: 128 bits).
Robust to scaling and brightness; weak on crops and scrolling (a shift moves
every gradient).
"""

from __future__ import annotations

import imagehash

from engine.algorithms._imagehash import ImageHashAlgorithm
from engine.picture import Picture


class DHash(ImageHashAlgorithm):
    name = "dhash"
    hash_size = 8
    yes_threshold = 10 / 64
    maybe_threshold = 16 / 64
    prefilter = True

    def _hash(self, picture: Picture) -> imagehash.ImageHash:
        pixels = picture.lanczos_grey(self.hash_size + 1, self.hash_size)  # ImageHash's dhash steps
        return imagehash.ImageHash(pixels[:, 1:] > pixels[:, :-1])


class DHash256(DHash):
    name = "dhash256"
    hash_size = 16
    yes_threshold = 0.15
    maybe_threshold = 0.25
    prefilter = False
    enabled_by_default = False

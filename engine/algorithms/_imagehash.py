"""Shared shape of the ImageHash-based algorithms (aHash, pHash, dHash, wHash).

ImageHash (J. Buchner) computes a ``hash_size x hash_size`` boolean matrix; we
store it as packed bits (``hash_size**2 / 8`` bytes, row-major, MSB first), so
the feature doubles as the prefilter code and the distance is the share of
differing bits. The classic 64-bit hashes (hash_size 8) put different pages of
one site within 3-6 bits of each other; the 256-bit variants
(hash_size 16) resolve finer structure at the same cost of a popcount.

The hash is ImageHash's own, on the picture's shared grey copy: exactly what
``imagehash.phash(Image.open(f))`` gives for a picture within the working
size. aHash, pHash and dHash take ImageHash's Lanczos thumbnail from
:meth:`Picture.lanczos_grey` (Pillow's arithmetic, bit for bit, ~2x faster)
and apply ImageHash's few lines of arithmetic to it; wHash calls ImageHash.
Feeding ImageHash a box-reduced copy would be cheaper still, but flips
bits measurably (dHash compares neighbours of near-equal grey on flat pages:
up to 9 of 64 bits, 22 vote changes on 376 pairs of eval-small with
``benchmarks/feature_drift.py``), so Lanczos runs on the full grey picture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import imagehash
import numpy as np

from engine.algorithms.base import Algorithm, check_length, hamming_fraction
from engine.picture import Picture


class ImageHashAlgorithm(Algorithm):
    """Base for the ImageHash algorithms; subclasses set ``hash_size`` and ``_hash``."""

    hash_size: ClassVar[int] = 8
    orientable = True
    prefilter = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.hamming_bits = cls.hash_size * cls.hash_size

    def _hash(self, picture: Picture) -> imagehash.ImageHash:
        raise NotImplementedError

    def extract(self, picture: Picture) -> bytes:
        bits = np.asarray(self._hash(picture).hash, dtype=bool).ravel()
        return np.packbits(bits).tobytes()

    def distance(self, a: bytes, b: bytes) -> float:
        size = self.hamming_bits // 8
        check_length(self.name, a, size)
        check_length(self.name, b, size)
        return hamming_fraction(a, b)


def fixed(function: Callable[..., imagehash.ImageHash], **params: object) -> Callable:
    """``function`` with keyword parameters bound (keeps the subclasses one line each)."""
    def run(_self: ImageHashAlgorithm, picture: Picture) -> imagehash.ImageHash:
        return function(picture.grey_image, hash_size=_self.hash_size, **params)
    return run

"""``phash_dct_base64``: perception's pHash, the value CERT Polska's ``cert-pl-phishing`` object carries.

The MISP object template ``cert-pl-phishing`` describes its ``phash-dct-base64``
attribute as "pHash (DCT hash) - as described in https://github.com/thorn-oss/perception".
That is perception's ``PHash().compute(path)`` with its defaults (perception 0.9.3,
``perception/hashers/image/phash.py``; Zauner 2010 without the box filter):

1. OpenCV's RGB -> grey (``cv2.cvtColor``, fixed-point Rec.601);
2. ``cv2.resize`` to 32 x 32 with ``INTER_AREA``;
3. ``scipy.fftpack.dct`` along rows, then columns (type II, unnormalised);
4. the top-left 8 x 8 coefficients, row-major; bit = coefficient >= their median;
5. the 64 bits packed most significant first (``np.packbits``), base64: 12 characters.

Decoding, as perception's reader (OpenCV's ``imread``) decodes a file: EXIF
orientation applied, transparency dropped (not flattened), palette and grey
pictures expanded to RGB, 16-bit channels scaled to 8 bits (the top byte).
``tests/test_conformance_perception.py`` checks the values against perception's own.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np
from PIL import Image, ImageOps

SIDE = 32  # pixels: hash_size 8 x highfreq_factor 4
BITS_SIDE = 8


def phash_dct_base64(image: Image.Image) -> str:
    """perception's default pHash of a picture as Pillow opened it, base64 (12 characters)."""
    return encode(dct_bits(perception_rgb(image)))


def perception_rgb(image: Image.Image) -> np.ndarray:
    """H x W x 3 uint8 RGB as OpenCV's ``imread`` gives perception a file's pixels."""
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I;16") or image.mode == "I":  # 16-bit grey: the top byte, as imread
        grey = (np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def dct_bits(rgb: np.ndarray) -> np.ndarray:
    """The 64 booleans of perception's ``PHash._compute`` on RGB pixels."""
    import scipy.fftpack  # here, not at import: SciPy costs every quaid command ~0.4 s to load

    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, dsize=(SIDE, SIDE), interpolation=cv2.INTER_AREA)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(small, axis=1), axis=0)
    block = dct[:BITS_SIDE, :BITS_SIDE].flatten()
    return block >= np.median(block)


def encode(bits: np.ndarray) -> str:
    """perception's ``vector_to_string`` for a boolean hash: packed bits, base64."""
    return base64.b64encode(np.packbits(bits.astype(bool)).tobytes()).decode("ascii")


def decode(value: str) -> bytes:
    """The 8 packed bytes of a ``phash_dct_base64`` value; ValueError when it is not one."""
    raw = base64.b64decode(value.strip(), validate=True)
    if len(raw) != BITS_SIDE * BITS_SIDE // 8:
        raise ValueError(f"a phash_dct_base64 value holds 8 bytes, this one {len(raw)}")
    return raw

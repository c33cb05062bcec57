"""TLSH on normalised pixel data (not on file bytes, which carry no visual signal).

Oliver, Cheng, Chen, "TLSH - A Locality Sensitive Hash" (CTC 2013), via
py-tlsh. TLSH summarises byte trigrams of its input; fed the bytes of a file,
two encodings of one picture share nothing. We feed it pixels instead: grey,
area-resized to 64x64, contrast-stretched (1 % cut, so a brightness change
does not shift every level), quantised to 16 levels (4 bits, so recompression
noise rarely changes a byte), rows in order: 4096 bytes.

Measured on the conformance pictures, TLSH of pixels separates copies from
unrelated pictures poorly (copies up to diff ~130, unrelated from ~90): a
weak, explainable extra vote, off by default.

Feature: the TLSH digest as ASCII. Distance: ``tlsh.diff`` (0 = identical,
unbounded; a few hundred for unrelated inputs) divided by DIFF_CAP = 300 and
capped at 1. TLSH refuses inputs with too little variation (a blank page):
then the feature is ``TNULL``; two TNULL features are at distance 0 (both
flat), a TNULL and a real digest at distance 1.
"""

from __future__ import annotations

import numpy as np
import tlsh
from PIL import Image, ImageOps

from engine.algorithms.base import Algorithm
from engine.errors import BadInput
from engine.picture import Picture

SIDE = 64
LEVELS_SHIFT = 4  # keep the top 4 bits of each grey level
DIFF_CAP = 300.0  # tlsh.diff at which the distance reaches 1
NULL = b"TNULL"


class PixelTLSH(Algorithm):
    name = "tlsh"
    yes_threshold = 90 / DIFF_CAP
    maybe_threshold = 135 / DIFF_CAP
    cost = 3
    orientable = True
    enabled_by_default = False

    def extract(self, picture: Picture) -> bytes:
        small = picture.grey_image.resize((SIDE, SIDE), Image.Resampling.BOX)
        small = ImageOps.autocontrast(small, cutoff=1)
        data = (np.asarray(small, dtype=np.uint8) >> LEVELS_SHIFT).tobytes()
        digest = tlsh.hash(data)
        return digest.encode("ascii") if digest and digest != "TNULL" else NULL

    def distance(self, a: bytes, b: bytes) -> float:
        for feature in (a, b):
            if feature != NULL and not _valid(feature):
                raise BadInput(f"tlsh: malformed feature of {len(feature)} bytes")
        if a == NULL or b == NULL:
            return 0.0 if a == b else 1.0
        return min(1.0, tlsh.diff(a.decode("ascii"), b.decode("ascii")) / DIFF_CAP)


def _valid(feature: bytes) -> bool:
    try:
        text = feature.decode("ascii")
    except UnicodeDecodeError:
        return False
    body = text[2:] if text.startswith("T1") else text
    return len(body) == 70 and all(c in "0123456789ABCDEF" for c in body)

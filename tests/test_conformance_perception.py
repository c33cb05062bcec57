"""``phash_dct_base64`` equals perception's own ``PHash().compute(path)`` on the same files.

Reference: perception 0.9.3 (thorn-oss; ``perception/hashers/image/phash.py`` and
``hashers/tools.py``), whose outputs ``tests/fixtures/conformance/record_perception.py``
recorded in ``perception_references.json`` from a side environment (perception brings its own
OpenCV build). The pictures cover its decoding: an EXIF-rotated JPEG, a 16-bit grey PNG,
transparency, a palette, grey and a flat picture. On the 437 pictures of a small evaluation
set (383 PNG, 54 JPEG) the values were all equal as well.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import perception_phash
from engine.exchange import hash_record

FIXTURES = Path(__file__).parent / "fixtures" / "conformance"
RECORDED = json.loads((FIXTURES / "perception_references.json").read_text())
NAMES = sorted(RECORDED["pictures"])


def test_recorded_with_the_named_perception_version():
    assert RECORDED["versions"]["perception"] == "0.9.3"
    assert {"deep.png", "rotated.jpg", "transparent.png", "palette.png", "flat.png"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_exchanged_value_equals_perceptions(name):
    record = hash_record((FIXTURES / name).read_bytes(), name)
    assert record["hashes"]["phash_dct_base64"] == RECORDED["pictures"][name]["phash_dct_base64"]


def test_exif_orientation_is_applied_as_perceptions_reader_does():
    """Without the EXIF turn the value would be the unrotated photo's (a different hash)."""
    rotated = Image.open(FIXTURES / "rotated.jpg")
    plain = perception_phash.encode(perception_phash.dct_bits(np.asarray(rotated.convert("RGB"))))
    expected = RECORDED["pictures"]["rotated.jpg"]["phash_dct_base64"]
    assert perception_phash.phash_dct_base64(rotated) == expected and plain != expected


def test_sixteen_bit_grey_keeps_the_top_byte():
    deep = Image.open(FIXTURES / "deep.png")
    assert deep.mode.startswith("I;16")
    clipped = np.asarray(deep).clip(0, 255).astype(np.uint8)  # what a clipping decoder would give
    wrong = perception_phash.encode(perception_phash.dct_bits(np.repeat(clipped[..., None], 3, axis=2)))
    assert perception_phash.phash_dct_base64(deep) == RECORDED["pictures"]["deep.png"]["phash_dct_base64"]
    assert wrong != RECORDED["pictures"]["deep.png"]["phash_dct_base64"]


def test_format_is_twelve_base64_characters_of_packed_bits():
    value = RECORDED["pictures"]["photo.jpg"]["phash_dct_base64"]
    assert len(value) == 12 and perception_phash.decode(value) == base64.b64decode(value)
    for bad in ("not base64!", base64.b64encode(bytes(9)).decode()):
        with pytest.raises(ValueError):
            perception_phash.decode(bad)

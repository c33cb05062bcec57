"""Fuzzing the picture decoder: mutated PNG, JPEG, GIF, WebP, BMP and TIFF bytes from the tests'
generated pictures either decode to a proper picture or fail with one of quaid's documented errors
(``NotAPicture`` 415, ``PictureTooLarge`` 413), never with anything else.

Short here (``QUAID_FUZZ_EXAMPLES``, default 60 examples a test); ``benchmarks/fuzz_long.py`` runs
the same tests for longer.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.errors import NotAPicture, PictureTooLarge
from engine.picture import load_picture
from tests.badinput import bad_inputs, sample_picture

EXAMPLES = int(os.environ.get("QUAID_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="QUAID_FUZZ_SEED" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MAX_PIXELS = 4_000_000  # a mutated header may declare anything: keep each decode cheap
WORKING_SIDE = 256


@lru_cache(maxsize=1)
def seeds() -> tuple[bytes, ...]:
    """Small valid files of every accepted format, plus the awkward ones of the bad-input corpus."""
    picture = sample_picture(3, (96, 64))
    files = []
    for fmt, image, params in [
        ("PNG", picture, {}), ("PNG", picture.convert("P"), {"transparency": 0}),
        ("PNG", picture.convert("LA"), {}), ("JPEG", picture, {"quality": 80}),
        ("JPEG", picture, {"progressive": True}), ("JPEG", picture.convert("CMYK"), {}),
        ("GIF", picture.convert("P"), {}), ("WEBP", picture, {}), ("BMP", picture, {}),
        ("TIFF", picture, {"compression": "tiff_deflate"}), ("TIFF", picture.convert("L"), {}),
    ]:
        out = io.BytesIO()
        image.save(out, fmt, **params)
        files.append(out.getvalue())
    frames = [picture.convert("P").rotate(angle) for angle in (0, 90, 180)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    files.append(out.getvalue())
    out = io.BytesIO()
    picture.save(out, "PNG", save_all=True, append_images=[picture.rotate(90)])  # APNG
    files.append(out.getvalue())
    files += [data for name, data, expected in bad_inputs() if expected == "ok" and len(data) < 200_000]
    return tuple(files)


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "byte", "truncate", "insert", "delete", "splice"]))
        where = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and data:
            data[where] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE]))
        elif kind == "truncate":
            del data[where:]
        elif kind == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[where:where + draw(st.integers(1, 64))]
        else:
            other = draw(st.sampled_from(seeds()))
            start = draw(st.integers(0, len(other) - 1))
            data[where:where] = other[start:start + draw(st.integers(1, 256))]
    return bytes(data)


def decode_or_refuse(data: bytes) -> None:
    try:
        picture = load_picture(data, max_pixels=MAX_PIXELS, working_side=WORKING_SIDE)
    except (NotAPicture, PictureTooLarge) as exc:
        text = str(exc)
        assert text and "\n" not in text  # a one-line reason for the API and the CLI
        return
    rgb = picture.rgb
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert 1 <= max(rgb.shape[:2]) <= WORKING_SIDE
    assert picture.original_width * picture.original_height <= MAX_PIXELS


@FUZZ
@given(mutated())
def test_mutated_pictures_decode_or_fail_with_a_documented_error(data):
    decode_or_refuse(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_decode_or_fail_with_a_documented_error(data):
    decode_or_refuse(data)


@FUZZ
@given(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\0\0\0\0WEBPVP8 ", b"BM",
                        b"II*\0", b"MM\0*"]), st.binary(max_size=512))
def test_format_signatures_followed_by_anything_fail_cleanly(signature, tail):
    decode_or_refuse(signature + tail)


def test_the_seeds_themselves_decode():
    for data in seeds():
        assert load_picture(data, max_pixels=MAX_PIXELS, working_side=WORKING_SIDE).rgb.size
    assert Image.open(io.BytesIO(seeds()[0])).format == "PNG"

"""The fast code paths compute what the reference formulations compute.

Speed work replaced library or textbook code by cheaper equivalents: pHash's
SciPy DCT by OpenCV's, Pillow's Lanczos resize by matrix products, Goldberg's
float arithmetic on [0, 1] by integer grey levels, per-algorithm grey
conversions by one cached grey copy. Each test runs the reference next to the
fast path on drawn pictures (the conformance kit's pages and photos, flat and
half-flat pictures; noise and stripes for the resize) and asserts the same
result.
"""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from PIL import Image

from engine import resample
from engine.algorithms.ahash import AHash, AHash256
from engine.algorithms.dhash import DHash, DHash256
from engine.algorithms.goldberg_screen import GoldbergScreen as Goldberg
from engine.algorithms.phash import PHash, PHash256
from engine.picture import Picture
from tests.serverproc import run_python_json
from tests.test_algorithms import SOURCES, as_picture, modifications


def _pictures() -> list[Picture]:
    out = []
    for images in SOURCES.values():
        for image in images:
            out.append(as_picture(image))
            out.extend(modifications(image).values())
    half = Image.new("RGB", (400, 300), (200, 200, 200))
    half.paste((40, 40, 40), (0, 0, 400, 150))
    out += [as_picture(Image.new("RGB", (320, 200), colour)) for colour in ("white", "black", (17, 90, 200))]
    out.append(as_picture(half))
    return out


PICTURES = _pictures()


@pytest.mark.parametrize("cls", [PHash, PHash256])
def test_phash_equals_imagehash(cls: type[PHash]) -> None:
    algorithm = cls()
    for picture in PICTURES:
        reference = imagehash.phash(picture.image, hash_size=cls.hash_size)
        ours = np.unpackbits(np.frombuffer(algorithm.extract(picture), np.uint8)).astype(bool)
        assert np.array_equal(ours, np.asarray(reference.hash).ravel())


@pytest.mark.parametrize(("cls", "reference"), [
    (DHash, imagehash.dhash), (DHash256, imagehash.dhash),
    (AHash, imagehash.average_hash), (AHash256, imagehash.average_hash),
])
def test_dhash_and_ahash_equal_imagehash(cls: type[DHash | AHash], reference) -> None:
    algorithm = cls()
    for picture in PICTURES:
        expected = np.asarray(reference(picture.image, hash_size=cls.hash_size).hash).ravel()
        ours = np.unpackbits(np.frombuffer(algorithm.extract(picture), np.uint8)).astype(bool)
        assert np.array_equal(ours, expected)


# (height, width) of the source: screenshots, a tall page, a narrow strip, tiny pictures, sizes
# where the target exceeds the source on one axis (upscaling), and both of Pillow's pass orders
RESAMPLE_SHAPES = [(800, 1280), (1280, 205), (1280, 720), (600, 799), (1000, 17), (17, 1000),
                   (31, 33), (9, 8), (3, 7), (1, 1), (32, 32)]
RESAMPLE_SIZES = [(32, 32), (9, 8), (64, 64), (16, 16), (17, 16), (8, 8), (3, 40), (40, 3)]


def test_lanczos_resize_equals_pillow_bit_for_bit() -> None:
    assert resample.matches_pillow()  # else quaid falls back to Pillow and this tests nothing new
    rng = np.random.default_rng(3)
    for shape in RESAMPLE_SHAPES:
        noise = rng.integers(0, 256, shape, dtype=np.uint8)
        stripes = np.zeros(shape, np.uint8)
        stripes[::2] = 255  # overshoot: Lanczos's negative lobes clip at 0 and 255
        for grey in (noise, stripes, np.full(shape, 255, np.uint8)):
            image = Image.fromarray(grey, "L")
            for size in RESAMPLE_SIZES:
                ours = resample._resize(grey.astype(np.float64), size)  # the fast path itself
                expected = np.asarray(image.resize(size, Image.Resampling.LANCZOS))
                assert np.array_equal(ours, expected), (shape, size)
    for picture in PICTURES:
        assert np.array_equal(picture.lanczos_grey(32, 32),
                              np.asarray(picture.grey_image.resize((32, 32), Image.Resampling.LANCZOS)))


def test_lanczos_resize_falls_back_to_pillow_when_pillow_resizes_otherwise(monkeypatch) -> None:
    """The self-check catches a Pillow whose pass order differs from the one assumed."""
    monkeypatch.setattr(resample, "VERTICAL_PASS_FIRST_RULE", not resample.VERTICAL_PASS_FIRST_RULE)
    resample.matches_pillow.cache_clear()
    try:
        assert not resample.matches_pillow()
        tall = np.random.default_rng(4).integers(0, 256, (1280, 205), dtype=np.uint8)
        expected = np.asarray(Image.fromarray(tall, "L").resize((32, 32), Image.Resampling.LANCZOS))
        assert np.array_equal(resample.lanczos_resize(tall, (32, 32)), expected)
    finally:
        monkeypatch.undo()
        resample.matches_pillow.cache_clear()


def _goldberg_reference(grey: np.ndarray) -> np.ndarray:
    """Goldberg et al. as image-match formulates it: float grey levels in [0, 1] throughout."""
    grey = grey.astype(np.float64) / 255.0
    limits = []
    for axis in (1, 0):
        size = grey.shape[0] if axis == 1 else grey.shape[1]
        total = np.cumsum(np.abs(np.diff(grey, axis=axis)).sum(axis=axis))
        if size < 18 or total[-1] <= 0:
            limits.append((0, size))
            continue
        low = int(np.searchsorted(total, 0.05 * total[-1], side="right"))
        high = int(np.searchsorted(total, 0.95 * total[-1], side="left")) + 1
        fallback = (int(0.05 * size), int(np.ceil(0.95 * size)))
        limits.append((low, min(high, size)) if high - low >= 9 else fallback)
    (r0, r1), (c0, c1) = limits
    side = max(2, int(0.5 + min(r1 - r0, c1 - c0) / 20))
    ys = np.linspace(r0, r1, 11, dtype=int)[1:-1]
    xs = np.linspace(c0, c1, 11, dtype=int)[1:-1]
    levels = np.array([[grey[max(0, y - side // 2):][:side, max(0, x - side // 2):][:, :side].mean()
                        for x in xs] for y in ys])
    padded = np.pad(levels, 1, constant_values=np.nan)
    offsets = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
    diff = np.nan_to_num(np.stack([padded[1 + dy:10 + dy, 1 + dx:10 + dx] - levels for dy, dx in offsets], 2))
    out = np.zeros(diff.shape, np.int8)
    for sign in (1, -1):
        mask = sign * diff >= 2 / 255 - 1e-9  # two grey levels count, whatever the float rounding
        if mask.any():
            out[mask] = sign * np.where(sign * diff[mask] > np.median(sign * diff[mask]), 2, 1)
    return out.ravel()


def test_goldberg_integer_levels_equal_float_formulation() -> None:
    algorithm = Goldberg()
    for picture in PICTURES:
        ours = np.frombuffer(algorithm.extract(picture), np.int8)
        assert np.array_equal(ours, _goldberg_reference(picture.grey))


def test_grey_copy_is_computed_once_and_is_pillows_luma() -> None:
    picture = as_picture(SOURCES["page"][0])
    assert picture.grey_image is picture.grey_image
    assert np.array_equal(picture.grey, np.asarray(picture.image.convert("L")))


def test_transformed_picture_reuses_grey_exactly() -> None:
    picture = as_picture(SOURCES["photo"][0])
    assert picture.grey_image.mode == "L"  # computed before the transforms, so they transpose it
    for method in Image.Transpose:
        turned = picture.transformed(method)
        assert "grey_image" in turned.__dict__
        assert np.array_equal(turned.grey, np.asarray(turned.image.convert("L")))


def test_resizing_holds_blas_to_one_thread() -> None:
    """OpenBLAS's idle threads spin against the products on a one-CPU worker (search 95 -> 175 ms).

    In a fresh process: libraries loaded later (SciPy's own OpenBLAS copy) are
    not the one numpy's products use, and other tests load them.
    """
    script = (
        "import json, numpy as np\n"
        "from threadpoolctl import ThreadpoolController\n"
        "from engine import resample\n"
        "before = [i['num_threads'] for i in ThreadpoolController().select(user_api='blas').info()]\n"
        "resample.lanczos_resize(np.zeros((80, 128), np.uint8), (32, 32))\n"
        "after = [i['num_threads'] for i in ThreadpoolController().select(user_api='blas').info()]\n"
        "print(json.dumps([before, after]))\n"
    )
    before, after = run_python_json(script, drop=lambda name: name.endswith("_NUM_THREADS"),
                                    env={"OPENBLAS_NUM_THREADS": "2"})  # as on a 2-core machine
    assert before and all(n == 2 for n in before)
    assert after and all(n == 1 for n in after)

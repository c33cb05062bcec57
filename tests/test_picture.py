"""engine.picture: safe decoding and normalisation, checked pixel by pixel where it matters."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.errors import NotAPicture, PictureTooLarge
from engine.picture import load_picture
from tests.badinput import bad_inputs, png_chunk, png_file


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def quadrants(size: tuple[int, int] = (80, 60)) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right: orientation is visible."""
    w, h = size
    image = Image.new("RGB", size)
    for box, colour in (((0, 0, w // 2, h // 2), (255, 0, 0)), ((w // 2, 0, w, h // 2), (0, 255, 0)),
                        ((0, h // 2, w // 2, h), (0, 0, 255)), ((w // 2, h // 2, w, h), (255, 255, 255))):
        image.paste(colour, box)
    return image


def close(pixel, expected, tolerance: int = 12) -> bool:
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel, expected, strict=True))


CORPUS = list(bad_inputs())


@pytest.mark.parametrize("name,data,expected", CORPUS, ids=[case[0] for case in CORPUS])
def test_bad_input_corpus(name: str, data: bytes, expected: str) -> None:
    if expected == "error":
        with pytest.raises((NotAPicture, PictureTooLarge)) as info:
            load_picture(data)
        assert str(info.value)
    else:
        picture = load_picture(data)
        assert picture.image.mode == "RGB" and picture.width >= 1 and picture.height >= 1
        assert picture.rgb.dtype == np.uint8 and picture.rgb.shape == (picture.height, picture.width, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    """The stored pixels are transformed so that the decoded picture looks like the original."""
    original = quadrants()
    inverse = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}
    stored = original if inverse[orientation] is None else original.transpose(inverse[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    picture = load_picture(encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    assert (picture.width, picture.height) == original.size
    rgb = picture.rgb
    assert close(rgb[10, 10], (255, 0, 0)) and close(rgb[10, 70], (0, 255, 0))
    assert close(rgb[50, 10], (0, 0, 255)) and close(rgb[50, 70], (255, 255, 255))


def test_alpha_is_flattened_on_white() -> None:
    rgba = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (0, 0, 10, 10))
    rgba.paste((0, 0, 255, 128), (10, 0, 20, 10))
    rgb = load_picture(encode(rgba)).rgb
    assert tuple(rgb[5, 5]) == (255, 0, 0)
    assert close(rgb[5, 15], (127, 127, 255), 2)  # half-transparent blue over white


def test_fully_transparent_picture_is_white() -> None:
    assert (load_picture(encode(Image.new("RGBA", (8, 8), (0, 0, 0, 0)))).rgb == 255).all()


def test_la_mode_alpha_is_flattened() -> None:
    la = Image.new("LA", (4, 4), (0, 0))
    assert (load_picture(encode(la)).rgb == 255).all()


def test_palette_with_transparency() -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (5, 0, 10, 10))
    rgb = load_picture(encode(image, transparency=0)).rgb
    assert tuple(rgb[5, 2]) == (255, 255, 255)  # transparent index 0 -> white, not black
    assert tuple(rgb[5, 7]) == (255, 0, 0)
    gif = load_picture(encode(image, "GIF", transparency=0)).rgb
    assert tuple(gif[5, 2]) == (255, 255, 255) and tuple(gif[5, 7]) == (255, 0, 0)


def test_cmyk_jpeg_keeps_its_colours() -> None:
    rgb = load_picture(encode(quadrants().convert("CMYK"), "JPEG", quality=95)).rgb
    assert close(rgb[10, 10], (255, 0, 0), 30) and close(rgb[50, 70], (255, 255, 255), 30)


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    ramp = (np.arange(256, dtype=np.uint32) * 257).astype(np.uint16).reshape(16, 16)
    rgb = load_picture(encode(Image.fromarray(ramp))).rgb
    grey = rgb[:, :, 0].astype(int).ravel()
    assert np.abs(grey - np.arange(256)).max() <= 1  # 16-bit levels map back to 0..255


def test_sixteen_bit_with_low_values_is_not_blown_up() -> None:
    """A 16-bit picture that only uses levels <= 255 is read as 8-bit data, not divided by 257."""
    low = np.full((8, 8), 200, dtype=np.uint16)
    assert (load_picture(encode(Image.fromarray(low))).rgb == 200).all()


def test_animated_gif_and_webp_use_the_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    for fmt in ("GIF", "WEBP", "PNG"):
        data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)
        picture = load_picture(data)
        assert close(picture.rgb[8, 8], (255, 0, 0), 20), fmt


def test_greyscale_and_bilevel_become_rgb() -> None:
    assert load_picture(encode(Image.new("L", (5, 5), 77))).rgb[2, 2].tolist() == [77, 77, 77]
    assert load_picture(encode(Image.new("1", (5, 5), 1))).rgb[2, 2].tolist() == [255, 255, 255]


def test_large_pictures_are_resized_to_the_working_side() -> None:
    picture = load_picture(encode(Image.new("RGB", (4000, 3000), (10, 20, 30)), "JPEG"), working_side=1280)
    assert max(picture.width, picture.height) == 1280
    assert (picture.original_width, picture.original_height) == (4000, 3000)
    assert picture.height == 960  # aspect ratio kept


def test_small_pictures_are_not_enlarged() -> None:
    picture = load_picture(encode(Image.new("RGB", (30, 20))))
    assert (picture.width, picture.height) == (30, 20)


def test_grey_thumbnail_is_shared_by_orb_and_pdq() -> None:
    """One area-averaged grey thumbnail: ORB stores it, pdq-screen hashes it (a search resizes once)."""
    import pdqhash

    from engine.algorithms.orb import Orb
    from engine.algorithms.orb_feature import unpack
    from engine.algorithms.pdq_screen import PDQScreen

    rng = np.random.default_rng(3)
    picture = load_picture(encode(Image.fromarray(rng.integers(0, 256, (800, 1280, 3), np.uint8))))
    thumbnail = picture.grey_thumbnail
    assert thumbnail.shape == (320, 512) and thumbnail.dtype == np.uint8
    assert picture.grey_thumbnail is thumbnail  # computed once per picture
    assert unpack(Orb().extract(picture)).thumb.shape == thumbnail.shape
    bits, _quality = pdqhash.compute(np.repeat(thumbnail[:, :, None], 3, axis=2))
    assert PDQScreen().extract(picture)[:32] == np.packbits(np.asarray(bits, np.uint8)).tobytes()
    small = load_picture(encode(quadrants((80, 60))))
    assert small.grey_thumbnail.shape == (60, 80)  # never enlarged


def test_pixel_limit_is_configurable_and_checked_before_decoding() -> None:
    data = encode(Image.new("RGB", (200, 100)))
    assert load_picture(data, max_pixels=20_000).width == 200
    with pytest.raises(PictureTooLarge):
        load_picture(data, max_pixels=19_999)


def test_bomb_declared_in_a_tiny_file() -> None:
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    png = png_file(png_chunk(b"IHDR", header), png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)))
    assert len(png) < 1000
    with pytest.raises(PictureTooLarge):
        load_picture(png)


@pytest.mark.parametrize("data", [
    b"", b"\x00", b"GIF89a", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0" + b"\x00" * 20,
    b"<html><body>hello</body></html>", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
    b"BM" + b"\xff" * 60,
])
def test_junk_is_not_a_picture(data: bytes) -> None:
    with pytest.raises(NotAPicture):
        load_picture(data)


def test_corrupt_middle_of_png_is_not_a_picture() -> None:
    data = bytearray(encode(Image.effect_noise((64, 64), 50).convert("RGB")))
    data[len(data) // 2 : len(data) // 2 + 40] = b"\x00" * 40
    with pytest.raises(NotAPicture):
        load_picture(bytes(data))


def test_path_input_and_sha256(tmp_path) -> None:
    data = encode(quadrants())
    path = tmp_path / "q.png"
    path.write_bytes(data)
    import hashlib
    picture = load_picture(path)
    assert picture.sha256 == hashlib.sha256(data).hexdigest() == load_picture(str(path)).sha256
    assert picture.format == "PNG"


def test_transformed_keeps_identity() -> None:
    picture = load_picture(encode(quadrants()))
    mirrored = picture.transformed(Image.Transpose.FLIP_LEFT_RIGHT)
    assert mirrored.sha256 == picture.sha256
    assert close(mirrored.rgb[10, 10], (0, 255, 0), 0)
    assert picture.transformed(None) is picture


def _png_variants() -> dict[str, bytes]:
    """Plain 8-bit PNGs written in different ways (zlib levels, filters, encoders, alpha, tRNS)."""
    rng = np.random.default_rng(5)
    page = np.full((900, 1400, 3), 250, np.uint8)  # larger than the working size: resized after decoding
    page[100:140, 80:900] = 30
    page[300:800, 80:1300] = rng.integers(0, 256, (500, 1220, 3))
    rgba = np.dstack([page[:300, :400], rng.integers(0, 256, (300, 400), dtype=np.uint8)])
    ok, by_opencv = cv2.imencode(".png", page[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return {
        "rgb": encode(Image.fromarray(page)),
        "rgb-level0": encode(Image.fromarray(page), compress_level=0),
        "rgb-optimized": encode(quadrants((333, 211)), optimize=True),
        "rgb-trns": encode(Image.fromarray(page[:200, :300]), transparency=(250, 250, 250)),
        "rgba": encode(Image.fromarray(rgba, "RGBA")),
        "rgb-opencv": by_opencv.tobytes(),
    }


def test_plain_pngs_decoded_by_libspng_equal_pillows_pixels(monkeypatch) -> None:
    import engine.picture as module

    variants = _png_variants()
    calls = []
    real_load = module.pyspng.load
    monkeypatch.setattr(module.pyspng, "load", lambda *a, **k: calls.append(1) or real_load(*a, **k))
    fast = {name: load_picture(data) for name, data in variants.items()}
    assert len(calls) == len(variants)  # libspng decoded every one of them
    monkeypatch.setattr(module, "pyspng", None)
    for name, data in variants.items():
        slow = load_picture(data)  # Pillow only
        assert np.array_equal(fast[name].rgb, slow.rgb), name
        assert (fast[name].original_width, fast[name].format) == (slow.original_width, "PNG")


def test_pngs_that_need_pillow_are_left_to_pillow(monkeypatch) -> None:
    """Orientation, palettes, 16 bits, animation, interlacing: Pillow decodes, as before."""
    import engine.picture as module

    monkeypatch.setattr(module.pyspng, "load", lambda *a, **k: pytest.fail("libspng decoded it"))
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = load_picture(encode(quadrants().transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes()))
    assert (turned.width, turned.height) == quadrants().size  # the orientation was applied
    assert close(turned.rgb[10, 10], (255, 0, 0))
    load_picture(encode(quadrants().convert("P")))
    load_picture(encode(Image.fromarray(np.full((20, 30), 4000, np.uint16))))
    load_picture(encode(quadrants(), save_all=True, append_images=[quadrants().rotate(90)]))  # APNG
    # orientation in a text chunk keyed "exif" (Pillow reads it as EXIF)
    rotated = _raw_png(quadrants().transpose(Image.Transpose.ROTATE_90),
                       before=png_chunk(b"tEXt", b"exif\0" + exif.tobytes()))
    turned_back = load_picture(rotated)
    assert (turned_back.width, turned_back.height) == quadrants().size
    # a chunk after the image data: Pillow parses it when it finishes (and refuses it if damaged)
    with pytest.raises(NotAPicture):
        load_picture(_raw_png(quadrants(), after=png_chunk(b"gAMA", b"\0\1")))
    # a frame-control chunk without animation control: Pillow decodes into that frame's area
    frame = png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, 80, 30, 0, 30, 1, 1, 0, 0))
    load_picture(_raw_png(quadrants(), before=frame))


def test_unreadable_metadata_does_not_refuse_the_pixels(monkeypatch) -> None:
    """A compressed text chunk keyed "exif" makes Pillow's EXIF reader raise a TypeError."""
    import engine.picture as module

    data = _raw_png(quadrants(), before=png_chunk(b"zTXt", b"exif\0\0" + zlib.compress(b"not exif")))
    monkeypatch.setattr(module, "pyspng", None)  # Pillow decodes it either way (a keyword it reads)
    picture = load_picture(data)
    assert (picture.width, picture.height) == quadrants().size
    assert close(picture.rgb[10, 10], (255, 0, 0), 0)


def _raw_png(image: Image.Image, before: bytes = b"", after: bytes = b"") -> bytes:
    """An 8-bit RGB PNG built chunk by chunk, with ``before`` / ``after`` the image data."""
    pixels = np.asarray(image.convert("RGB"))
    rows = b"".join(b"\0" + row.tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", image.width, image.height, 8, 2, 0, 0, 0)
    return png_file(png_chunk(b"IHDR", header), before, png_chunk(b"IDAT", zlib.compress(rows)), after)


def test_pngs_with_wrong_checksums_get_pillows_answer(monkeypatch) -> None:
    """pyspng ignores checksums: such files go to Pillow, so quaid answers as it did before libspng.

    (Pillow streams IDAT without checking its checksum, and refuses other damaged chunks.)
    """
    import engine.picture as module

    def damaged(kind: bytes) -> bytes:
        data = bytearray(encode(quadrants()))
        at = data.index(kind)
        (length,) = struct.unpack_from(">I", data, at - 4)
        data[at + 4 + length] ^= 0xFF  # a checksum byte only: the pixels would still decode
        return bytes(data)

    def outcome(data: bytes):
        try:
            return load_picture(data).rgb.tobytes()
        except NotAPicture:
            return "refused"

    cases = [damaged(b"IDAT"), damaged(b"IHDR")]
    monkeypatch.setattr(module.pyspng, "load", lambda *a, **k: pytest.fail("libspng decoded it"))
    with_libspng = [outcome(data) for data in cases]
    monkeypatch.setattr(module, "pyspng", None)
    assert with_libspng == [outcome(data) for data in cases]
    assert with_libspng[1] == "refused"

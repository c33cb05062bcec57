"""A corpus of bad and awkward inputs, generated (never downloaded), for every entry point.

Each case is (name, bytes, expected) where expected is ``"error"`` (quaid must
refuse it with a clear reason) or ``"ok"`` (an awkward but valid picture that
quaid must accept and decode correctly). Used by the CLI, API, MISP-module and
AIL-connector tests so that every surface sees the same hostile files.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np
from PIL import Image


def _png(image: Image.Image, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **params)
    return out.getvalue()


def _jpeg(image: Image.Image, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", **params)
    return out.getvalue()


def sample_picture(seed: int = 0, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A deterministic, textured RGB picture (shapes on a gradient)."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 127 // (width + height))], -1)
    array = base.astype(np.uint8)
    for _ in range(12):
        x0, y0 = rng.integers(0, width - 20), rng.integers(0, height - 20)
        w, h = rng.integers(10, width // 3), rng.integers(10, height // 3)
        array[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, 3)
    return Image.fromarray(array, "RGB")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_file(*chunks: bytes) -> bytes:
    """The PNG signature, ``chunks`` (IHDR first) and IEND."""
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + png_chunk(b"IEND", b"")


def decompression_bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (one deflated row pattern)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = compressor.compress(row * 64) + compressor.flush()
    return png_file(png_chunk(b"IHDR", header), png_chunk(b"IDAT", body))


def many_frames_gif(frames: int = 3000) -> bytes:
    """An animated GIF with thousands of tiny frames: only the first one may be decoded."""
    images = []
    for i in range(frames):
        frame = Image.new("P", (16, 16), 0)
        frame.putpixel((i % 16, (i // 16) % 16), 1 + i % 200)
        images.append(frame)
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=10)
    return out.getvalue()


def exif_rotated_jpeg() -> bytes:
    """A JPEG stored landscape (200x100) with EXIF orientation 6: displayed portrait (100x200)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _jpeg(sample_picture(3, (200, 100)), exif=exif.tobytes())


def bad_inputs() -> Iterator[tuple[str, bytes, str]]:
    """Every case of the corpus: (name, bytes, "error" | "ok")."""
    picture = sample_picture()
    png, jpeg = _png(picture), _jpeg(picture, quality=90)
    rng = np.random.default_rng(7)
    yield "zero-bytes", b"", "error"
    yield "random-bytes", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "error"
    yield "truncated-png", png[: len(png) // 2], "error"
    yield "truncated-jpeg", jpeg[: len(jpeg) // 3], "error"
    yield "html-named-png", b"<!doctype html><html><body><h1>Not a picture</h1></body></html>", "error"
    yield "pdf-named-png", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n", "error"
    yield "svg", (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                  b'<rect width="10" height="10"/></svg>'), "error"
    yield "decompression-bomb", decompression_bomb_png(), "error"
    yield "many-frames-gif", many_frames_gif(), "ok"
    yield "cmyk-jpeg", _jpeg(picture.convert("CMYK")), "ok"
    sixteen = (np.asarray(picture.convert("L"), np.uint16) * 257).astype("<u2")
    yield "16-bit-png", _png(Image.fromarray(sixteen)), "ok"
    palette = picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    yield "palette-transparent-png", _png(palette, transparency=0), "ok"
    yield "exif-rotated-jpeg", exif_rotated_jpeg(), "ok"
    yield "one-pixel", _png(Image.new("RGB", (1, 1), (200, 10, 10))), "ok"

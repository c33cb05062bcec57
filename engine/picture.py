"""Safe picture loading: bytes or a path in, one normalised RGB picture out.

Why here: every algorithm must see the same pixels, and hostile input must be
refused before it costs memory. Steps, in order:

1. refuse empty input, formats outside :data:`ACCEPTED_FORMATS` (Pillow is
   given that list, so no other decoder ever sees the bytes: none that starts an
   external program, as EPS does with Ghostscript) and declared sizes above
   ``max_pixels`` (decompression bombs) *before* decoding pixels; Pillow reads
   the header only at ``open``;
2. take the first frame of animated GIF/WebP/APNG;
3. let JPEG decode at a reduced scale (``draft``) so a 12-megapixel photo costs
   little more than a screenshot;
4. reserve the pixels about to be decoded in the process's shared budget
   (:mod:`engine.budget`), so many large pictures at once wait their turn;
5. apply EXIF orientation, flatten transparency on white, convert any mode
   (palette, CMYK, 16-bit, greyscale) to 8-bit RGB;
6. resize once to at most ``working_side`` pixels on the long side; a picture
   taller than wide is scaled by its *width* instead (:func:`working_scale`)
   and keeps at most TALL_FACTOR working sides of height, from the top: a
   full-page capture, five or ten screens tall, would otherwise show its first
   screen at a fifth or a tenth of its width and its text as dust; its first
   screens are what identifies it and what a viewport capture of it shows.

Speed: plain 8-bit RGB(A) PNGs, the usual screenshot, are decoded by libspng
(``pyspng``: ~2x Pillow's speed, the same pixels; see :func:`_plain_png`);
everything else by Pillow. A picture is decoded once and each shared
derivative (the RGB and grey arrays, the grey copy) is computed once per
picture and cached on it, whatever number of algorithms use it;
``benchmarks/bench_extract.py`` measures decode and each algorithm separately.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import warnings
import zlib
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

try:
    import pyspng
except ImportError:  # pragma: no cover - a dependency; Pillow decodes every PNG without it
    pyspng = None

from engine.budget import PixelBudget
from engine.errors import NotAPicture, PictureTooLarge
from engine.resample import lanczos_resize

DEFAULT_MAX_PIXELS = 60_000_000  # pixels; ~ a 9000 x 6700 photo
DEFAULT_WORKING_SIDE = 1280  # pixels on the long side after normalisation
# Pillow format ids quaid decodes (JPEG includes its MPO variant, PNG its animated APNG form)
ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
GREY_THUMBNAIL_SIDE = 512  # long side of the shared grey thumbnail (ORB's stored one, pdq-screen's input)
TALL_FACTOR = 4  # a picture taller than wide keeps at most this many working sides of height (from the top)
#: how pictures are normalised; part of every feature's version (:mod:`engine.store.versions`):
#: 1 = long side to the working side; 2 = a picture taller than wide keeps its width (TALL_FACTOR)
NORMALISATION = 2


@dataclass(frozen=True)
class Picture:
    """A decoded, normalised picture. ``image`` is 8-bit RGB, long side <= working side."""

    image: Image.Image
    sha256: str
    original_width: int
    original_height: int
    format: str
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    @cached_property
    def rgb(self) -> np.ndarray:
        """H x W x 3 uint8 array of the working-size picture."""
        return np.asarray(self.image, dtype=np.uint8)

    @cached_property
    def grey_image(self) -> Image.Image:
        """Pillow ``L`` copy (ITU-R 601-2 luma), shared by every algorithm that works on grey."""
        return self.image.convert("L")

    @cached_property
    def grey(self) -> np.ndarray:
        """H x W uint8 luma (ITU-R 601-2, as Pillow's ``L`` mode)."""
        return np.asarray(self.grey_image, dtype=np.uint8)

    @cached_property
    def _grey_float(self) -> np.ndarray:
        return self.grey.astype(np.float64)

    def lanczos_grey(self, width: int, height: int) -> np.ndarray:
        """``grey_image.resize((width, height), LANCZOS)`` as uint8, bit for bit, in a fraction of
        Pillow's time (:mod:`engine.resample`); the grey picture's float copy is shared by all sizes."""
        return lanczos_resize(self._grey_float, (width, height))

    @cached_property
    def grey_thumbnail(self) -> np.ndarray:
        """The grey picture at most GREY_THUMBNAIL_SIDE px on its long side (area averaging keeps text's ink).

        One resize serves two algorithms: the ORB verifier stores it to compare
        pixels once aligned, and pdq-screen hashes it (PDQ's Jarosz filter keeps 64x64 anyway).
        """
        grey = self.grey
        height, width = grey.shape
        scale = min(1.0, GREY_THUMBNAIL_SIDE / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if size == (width, height):
            return np.ascontiguousarray(grey)
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)

    def cropped(self, box: tuple[int, int, int, int]) -> Picture:
        """The part of the picture inside ``box`` (left, top, right, bottom, working pixels).

        Keeps the source's identity (sha256, original size): it is a view of the
        same picture, such as the page inside a window frame, never stored on its own.
        """
        part = Picture(self.image.crop(box), self.sha256, self.original_width, self.original_height,
                       self.format)
        if "grey_image" in self.__dict__:  # luma is per pixel: cropping it gives the same grey
            part.__dict__["grey_image"] = self.grey_image.crop(box)
        return part

    def transformed(self, method: Image.Transpose | None) -> Picture:
        """The same picture mirrored or rotated (for orientation-tolerant matching)."""
        if method is None:
            return self
        turned = Picture(self.image.transpose(method), self.sha256, self.original_width,
                         self.original_height, self.format)
        if "grey_image" in self.__dict__:  # luma is per pixel: transposing it gives the same grey
            turned.__dict__["grey_image"] = self.grey_image.transpose(method)
        return turned


def load_picture(
    source: bytes | str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    working_side: int = DEFAULT_WORKING_SIDE,
    budget: PixelBudget | None = None,
) -> Picture:
    """Decode ``source`` (bytes or a file path) into a :class:`Picture`.

    Raises :class:`NotAPicture` for anything Pillow cannot decode fully or that is not in
    :data:`ACCEPTED_FORMATS`, :class:`PictureTooLarge` when the declared pixel count exceeds
    ``max_pixels`` or the whole ``budget``, and :class:`engine.errors.ServiceBusy` when the
    budget stays in use by other decodes longer than its wait.
    """
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    if not data:
        raise NotAPicture("empty file")
    image = _open(data, max_pixels)
    fmt = image.format or "unknown"
    width, height = image.size
    _prepare(image, working_side)
    with budget.reserve(image.width * image.height) if budget is not None else nullcontext():
        plain = _plain_png(data, image)
        image = _decode(image, working_side) if plain is None else _resized(_to_rgb(plain), working_side)
    return Picture(image, hashlib.sha256(data).hexdigest(), width, height, fmt)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise NotAPicture("not a picture in a supported format (PNG, JPEG, GIF, WebP, BMP or TIFF)") from None
    except Image.DecompressionBombError:
        raise PictureTooLarge("picture declares far more pixels than allowed (decompression bomb)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise NotAPicture(f"cannot read picture header: {_reason(exc)}") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise NotAPicture(f"picture has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise PictureTooLarge(
            f"picture declares {width}x{height} pixels, above the limit of {max_pixels}"
        )
    return image


def _prepare(image: Image.Image, working_side: int) -> None:
    """First frame of animations; JPEG set to decode at a reduced scale (``image.size`` shrinks)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.seek(0)
            if image.format == "JPEG":
                image.draft("RGB", _draft_size(image.size, working_side))
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise NotAPicture(f"corrupt or truncated picture: {_reason(exc)}") from None


def _decode(image: Image.Image, working_side: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
            image = _oriented(image)
            if image.mode == "L":  # grey: resize before widening to RGB (4 bytes a pixel in Pillow);
                image = _resized(image, working_side)  # resampling each channel alike, same pixels
            image = _to_rgb(image)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise NotAPicture(f"corrupt or truncated picture: {_reason(exc)}") from None
    return _resized(image, working_side)


def working_scale(width: int, working_side: int) -> float:
    """The factor a picture is scaled by: its width to ``working_side``, never enlarged. That is its long
    side for a landscape picture; a picture taller than wide is then cut at TALL_FACTOR working sides."""
    return min(1.0, working_side / width)


def _resized(image: Image.Image, working_side: int) -> Image.Image:
    if image.height <= image.width:
        if image.width > working_side:
            image.thumbnail((working_side, working_side), Image.Resampling.LANCZOS)
        return image
    scale = working_scale(image.width, working_side)
    kept = min(image.height, math.ceil(TALL_FACTOR * working_side / scale))  # rows kept of the original
    if kept < image.height:
        image = image.crop((0, 0, image.width, kept))
    if scale >= 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(kept * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# chunks after which Pillow does more than decode pixels: animation (frames, a frame's area), orientation
PNG_PILLOW_CHUNKS = {b"acTL", b"fcTL", b"fdAT", b"eXIf"}
PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt"}
# keywords of the text chunks from which Pillow reads an orientation (EXIF, XMP)
PNG_ORIENTATION_KEYWORDS = {b"exif", b"Raw profile type exif", b"XML:com.adobe.xmp"}


def _plain_png(data: bytes, header: Image.Image) -> Image.Image | None:
    """The pixels of a plain PNG decoded by libspng, or None to let Pillow decode.

    Plain: 8-bit truecolour with or without alpha, not interlaced, every chunk
    intact (pyspng turns libspng's CRC check off, Pillow checks), nothing
    between the first IDAT and IEND but more IDAT (Pillow parses chunks there
    when it finishes and refuses damaged ones; libspng does not look), no
    animation chunk, no chunk that can tell an orientation. Chunks before the
    image data were parsed by Pillow when it read the header. On those files
    libspng and Pillow give the same pixels (``tests/test_picture.py``; 200
    screenshots; a review's 1 800 generated PNGs) in half the time (~6.5 vs ~13 ms
    for a 1280x800 screenshot). Anything else, or any libspng error, goes to
    Pillow, whose verdict stands. One difference is left: libspng does not
    verify zlib's Adler-32 checksum, so a file whose chunk checksums are right
    but whose compressed stream's own checksum is wrong (written so, as
    transport damage breaks the chunk checksums first) decodes where Pillow
    refuses it.
    """
    if pyspng is None or header.format != "PNG" or header.mode not in ("RGB", "RGBA"):
        return None
    if len(data) < 33 or data[24] != 8 or data[25] not in (2, 6) or data[28] != 0:
        return None  # IHDR: bit depth 8, truecolour (with alpha), not interlaced
    view, pos, image_data = memoryview(data), len(PNG_SIGNATURE), False
    while True:
        if pos + 12 > len(data):
            return None  # truncated: no IEND
        (length,) = struct.unpack_from(">I", data, pos)
        end = pos + 12 + length
        kind = data[pos + 4:pos + 8]
        if end > len(data) or zlib.crc32(view[pos + 4:end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            return None
        if kind == b"IEND":
            break
        if kind == b"IDAT":
            image_data = True
        elif image_data or kind in PNG_PILLOW_CHUNKS:
            return None
        elif kind in PNG_TEXT_CHUNKS:
            keyword = bytes(view[pos + 8:end - 4]).partition(b"\0")[0]
            if keyword in PNG_ORIENTATION_KEYWORDS:
                return None
        pos = end
    try:
        pixels = pyspng.load(data, format=header.mode)
    except (RuntimeError, ValueError):
        return None
    return Image.fromarray(pixels, header.mode)


def _oriented(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; without one, the image itself (Pillow would copy it)."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # Pillow's metadata parsers raise assorted errors (a TypeError for a compressed
        return image  # "exif" text chunk in a PNG): unreadable metadata is no reason to refuse the pixels
    if orientation in (None, 1):
        return image
    return ImageOps.exif_transpose(image) or image


def _draft_size(size: tuple[int, int], working_side: int) -> tuple[int, int]:
    """Ask JPEG's DCT scaling for no less than the working size (:func:`working_scale`)."""
    width, height = size
    scale = working_scale(width, working_side)
    return (max(1, int(width * scale)), max(1, int(height * scale)))


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB, transparent pixels flattened on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = max(float(array.max()), 1.0)
        scale = 255.0 / (65535.0 if peak > 255 else 255.0)
        image = Image.fromarray(np.clip(array * scale, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "RGB":
        return image  # converting would only copy it
    return image.convert("RGB")  # palette, CMYK (Pillow undoes Adobe's inversion), L, 1


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

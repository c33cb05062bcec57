"""Pillow-drawn test pictures: distinct per seed, and near-identical modified copies.

Each seed gives a page-like picture (coloured blocks, shapes, rows of "text" bars) so
that different seeds differ in layout, as different screenshots do.
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw


def drawn(seed: int, size: tuple[int, int] = (640, 480), fmt: str = "PNG") -> bytes:
    """A picture whose layout is drawn at random from ``seed``, encoded as ``fmt``."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(200, 256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(rng.randrange(6, 12)):
        x0, y0 = rng.randrange(width - 40), rng.randrange(height - 40)
        x1, y1 = x0 + rng.randrange(30, width // 2), y0 + rng.randrange(30, height // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
    for row in range(rng.randrange(5, 15)):
        y = 20 + row * rng.randrange(18, 30)
        x = rng.randrange(10, width // 3)
        draw.rectangle((x, y, x + rng.randrange(60, width - x), y + 6), fill=(20, 20, 20))
    return encode(image, fmt)


def variant(data: bytes, scale: float = 0.75, quality: int = 80) -> bytes:
    """A re-scaled, JPEG re-encoded copy (what a picture goes through when shared)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.LANCZOS)
    return encode(image, "JPEG", quality=quality)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()

"""Feature extraction cost: ms per picture, decode included, default set vs ``imagehash.phash`` alone.

Pictures: 1280x800 screenshots drawn with Pillow (PNG) and 12-megapixel photos
(4000x3000 JPEG, a wallpaper from /usr/share/wallpapers upscaled; a drawn
photo-like picture when no wallpaper is installed). Both contenders start
from the same encoded bytes in the same run:

* ``phash alone``: ``Image.open`` + ``imagehash.phash`` (what a minimal tool does);
* ``quaid default``: ``engine.picture.load_picture`` (safe decode, EXIF,
  resize to the working size) + ``Matcher.extract`` for every enabled algorithm;
* one row per algorithm: its ``extract`` alone on the decoded picture.

Run: ``.venv/bin/python -m benchmarks.bench_extract [--repeat N]``.
"""

from __future__ import annotations

import argparse
import glob
import io
import time
from collections.abc import Callable

import imagehash
import numpy as np
from PIL import Image, ImageDraw

from engine.config import Settings
from engine.matching import Matcher
from engine.picture import load_picture


def screenshot(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (1280, 800), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 1280, 80), fill=tuple(int(c) for c in rng.integers(0, 200, 3)))
    draw.rectangle((0, 80, 240, 800), fill=(238, 241, 245))
    for y in range(110, 760, 24):
        x = 280
        while x < 1200:
            width = int(rng.integers(15, 80))
            draw.text((x, y), "word"[: 1 + width // 20], fill=(40, 40, 40))
            draw.rectangle((x, y + 14, x + width, y + 15), fill=(120, 120, 120))
            x += width + 10
    return _encode(image, "PNG")


def photo(index: int) -> bytes:
    files = sorted(glob.glob("/usr/share/wallpapers/*/contents/images/*.jpg"))
    if files:
        image = Image.open(files[index % len(files)]).convert("RGB")
    else:
        rng = np.random.default_rng(index)
        image = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), "RGB")
    return _encode(image.resize((4000, 3000), Image.Resampling.BICUBIC), "JPEG", quality=90)


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def timed(function: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``function`` in ms over ``repeat`` runs (after one warm-up)."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def measure(pictures: list[bytes], matcher: Matcher, repeat: int) -> dict[str, float]:
    """Mean over ``pictures`` of each row's median ms."""
    rows: dict[str, list[float]] = {}
    for data in pictures:
        for name, ms in measure_one(data, matcher, repeat).items():
            rows.setdefault(name, []).append(ms)
    return {name: float(np.mean(values)) for name, values in rows.items()}


def measure_one(data: bytes, matcher: Matcher, repeat: int) -> dict[str, float]:
    rows = {
        "phash alone (decode incl.)": timed(lambda: imagehash.phash(Image.open(io.BytesIO(data))), repeat),
        "quaid default set (decode incl.)": timed(lambda: matcher.extract(load_picture(data)), repeat),
        "  decode (load_picture)": timed(lambda: load_picture(data), repeat),
    }
    picture = load_picture(data)
    for algorithm in matcher.algorithms:
        rows[f"  {algorithm.name}"] = timed(lambda a=algorithm: a.extract(picture), repeat)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--count", type=int, default=3, help="pictures of each kind")
    args = parser.parse_args()
    matcher = Matcher(Settings())
    sets = {
        "1280x800 PNG screenshot": [screenshot(i) for i in range(args.count)],
        "4000x3000 JPEG photo": [photo(i) for i in range(args.count)],
    }
    results = {kind: measure(pictures, matcher, args.repeat) for kind, pictures in sets.items()}
    kinds = list(results)
    print(f"default set: {', '.join(a.name for a in matcher.algorithms)}")
    print(f"{'ms per picture':36s}" + "".join(f"{k:>26s}" for k in kinds))
    for row in results[kinds[0]]:
        print(f"{row:36s}" + "".join(f"{results[k][row]:26.1f}" for k in kinds))


if __name__ == "__main__":
    main()

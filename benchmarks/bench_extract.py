"""Feature extraction cost: ms per picture, decode included, default set vs ``imagehash.phash`` alone.

Pictures, in one run:

* 1280x800 PNG screenshots: the Chromium-rendered documentation pages of
  ``datasets/eval-small/references`` (``quaid dataset build``); drawn with
  Pillow when that set is absent;
* 12-megapixel photos: 4000x3000 JPEG (quality 90) made from the largest size
  of different wallpapers in /usr/share/wallpapers (a drawn photo-like
  picture when none is installed).

Rows, each the mean over the pictures of the median over ``--repeat`` runs:

* ``phash alone``: ``Image.open`` + ``imagehash.phash`` (what a minimal tool does);
* ``quaid default set``: ``engine.picture.load_picture`` (safe decode, EXIF,
  resize to the working size) + ``Matcher.extract`` for every enabled algorithm;
* ``without verifiers``: the same without ORB (what every search computes;
  the verifier's query feature is extracted only when a candidate needs it);
* ``decode``: ``load_picture`` alone, and ``PNG/JPEG decode floor``: Pillow's
  ``open`` + ``load`` of the same bytes (what no decoder-bound tool can beat);
* one row per algorithm: its ``extract`` on a freshly decoded picture, so each
  row includes the shared preparations (grey copy, downscales) it triggers
  first; the default-set row counts them once.

Figures are CPU time of this process (``time.process_time``), pinned to one
core with OpenCV and faiss on one thread: on a shared, loaded machine wall
time measures the other processes, CPU time measures the code. Wall time is
printed too.

Run: ``.venv/bin/python -m benchmarks.bench_extract [--repeat N] [--count N]``.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageDraw

from benchmarks.bench_index import pin_one_core
from engine.algorithms.base import COSTLY
from engine.config import Settings
from engine.matching import Matcher
from engine.picture import Picture, load_picture

SCREENSHOTS = Path("datasets/eval-small/references")


def screenshots(count: int) -> list[bytes]:
    files = sorted(SCREENSHOTS.glob("*.png"))
    if files:
        step = max(1, len(files) // count)
        return [f.read_bytes() for f in files[::step][:count]]
    return [drawn_screenshot(seed) for seed in range(count)]


def drawn_screenshot(seed: int) -> bytes:
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


def photos(count: int) -> list[bytes]:
    """``count`` 4000x3000 JPEGs, each from the largest size of a different wallpaper."""
    out = []
    for folder in sorted(Path("/usr/share/wallpapers").glob("*/contents/images")):
        files = sorted(folder.glob("*.jpg"), key=lambda p: p.stat().st_size)
        if files:
            out.append(Image.open(files[-1]).convert("RGB"))
        if len(out) == count:
            break
    rng = np.random.default_rng(0)
    while len(out) < count:
        out.append(Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), "RGB"))
    return [_encode(i.resize((4000, 3000), Image.Resampling.BICUBIC), "JPEG", quality=90) for i in out]


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def timed(function: Callable[[], object], repeat: int,
          setup: Callable[[], object] | None = None) -> tuple[float, float]:
    """Median (CPU ms, wall ms) of ``function(setup())`` over ``repeat`` runs, after one warm-up.

    ``setup`` (untimed) prepares a fresh argument for each run.
    """
    def run() -> tuple[float, float]:
        argument = setup() if setup else None
        cpu, wall = time.process_time(), time.perf_counter()
        function(argument) if setup else function()
        return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000

    run()
    samples = np.array([run() for _ in range(repeat)])
    return float(np.median(samples[:, 0])), float(np.median(samples[:, 1]))


def measure(pictures: list[bytes], matcher: Matcher, repeat: int) -> dict[str, tuple[float, float]]:
    """Mean over ``pictures`` of each row's medians."""
    rows: dict[str, list[tuple[float, float]]] = {}
    for data in pictures:
        for name, ms in measure_one(data, matcher, repeat).items():
            rows.setdefault(name, []).append(ms)
    return {name: tuple(np.mean(values, axis=0)) for name, values in rows.items()}


def _cheap(matcher: Matcher, picture: Picture) -> None:
    """What every search computes; verifiers (ORB) run only for unsure candidates."""
    for algorithm in matcher.algorithms:
        if algorithm.cost < COSTLY:
            algorithm.extract(picture)


def _floor(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    image.load()


def measure_one(data: bytes, matcher: Matcher, repeat: int) -> dict[str, tuple[float, float]]:
    rows = {
        "phash alone (decode incl.)": timed(lambda: imagehash.phash(Image.open(io.BytesIO(data))), repeat),
        "quaid default set (decode incl.)": timed(lambda: matcher.extract(load_picture(data)), repeat),
        "  without verifiers (cost < COSTLY)": timed(lambda: _cheap(matcher, load_picture(data)), repeat),
        "  decode (load_picture)": timed(lambda: load_picture(data), repeat),
        "  decode floor (Pillow open+load)": timed(lambda: _floor(data), repeat),
    }
    for algorithm in matcher.algorithms:
        rows[f"  {algorithm.name}"] = timed(algorithm.extract, repeat, setup=lambda: load_picture(data))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--count", type=int, default=4, help="pictures of each kind")
    args = parser.parse_args()
    pin_one_core()
    import cv2

    cv2.setNumThreads(1)
    matcher = Matcher(Settings())
    sets = {
        "1280x800 PNG screenshot": screenshots(args.count),
        "4000x3000 JPEG photo": photos(args.count),
    }
    results = {kind: measure(pictures, matcher, args.repeat) for kind, pictures in sets.items()}
    kinds = list(results)
    print(f"default set: {', '.join(a.name for a in matcher.algorithms)}; "
          f"{args.count} pictures of each kind, median of {args.repeat} runs; CPU ms (wall ms)")
    print(f"{'ms per picture':36s}" + "".join(f"{k:>26s}" for k in kinds))
    for row in results[kinds[0]]:
        cells = (f"{results[k][row][0]:17.1f} ({results[k][row][1]:5.0f})" for k in kinds)
        print(f"{row:36s}" + "".join(cells))


if __name__ == "__main__":
    main()

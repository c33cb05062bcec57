"""The visual difference (engine.visual_diff): ms per drawing and PNG size, on drawn 1280x800 pages.

    .venv/bin/python -m benchmarks.bench_visual_diff [--rounds 20] [--json out.json]

Pairs: a page and its copy with a rewritten heading, with a banner, a sibling page of the
same template, and the page itself (tests/test_orb.py's drawn site). Features are extracted
once; the time is the drawing alone (alignment, both differences, rendering, PNG).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time

from engine.algorithms.orb import Orb
from engine.picture import load_picture
from engine.visual_diff import render
from tests.test_orb import site_page
from tests.test_same_template import sibling_page


def feature(image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return Orb().extract(load_picture(out.getvalue()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    page = feature(site_page(5))
    pairs = {"heading": feature(site_page(5, heading="Please confirm your card details")),
             "banner": feature(site_page(5, banner=60)), "sibling": feature(sibling_page(5, 1)), "same": page}
    figures = {}
    for name, other in pairs.items():
        render(page, other)  # warm caches (decoded thumbnails)
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            drawn = render(page, other)
            times.append((time.perf_counter() - started) * 1000)
        figures[name] = {"ms_median": round(statistics.median(times), 1), "png_bytes": len(drawn.png),
                         "rewritten": drawn.rewritten, "added": list(drawn.added)}
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()

"""ORB verifier: speed (ms per extract, per distance) and separation on generated screenshots.

    .venv/bin/python -m benchmarks.bench_orb              # speed on 1280x800 screenshots
    .venv/bin/python -m benchmarks.bench_orb --separation # distances: modified copies vs other pages

The separation set is rendered with headless Chromium (tests/screenshots.py):
pages of a synthetic bank site and of five installed documentation sites;
every page's plain screenshot is "known", its modified copies must be YES and
every other page of the same site must not be YES. Rendered pictures are
cached in ``--cache`` so that reruns only measure.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from PIL import Image

from engine.algorithms.orb import Orb
from engine.picture import load_picture
from tests import screenshots

SITES = ("template", "python", "django", "sphinx", "postgres", "git")


def render_set(cache: Path, pages_per_site: int) -> dict[str, dict[str, dict[str, Path]]]:
    """site -> page -> {"original": path, modification: path}; renders what the cache lacks."""
    out: dict[str, dict[str, dict[str, Path]]] = {}
    todo = []
    for site in SITES:
        if site == "template":
            urls = screenshots.write_template_site(cache / "site", pages_per_site)
        else:
            urls = screenshots.doc_pages(site, pages_per_site)
        for i, url in enumerate(urls):
            folder = cache / site / str(i)
            out.setdefault(site, {})[url] = {p.stem: p for p in sorted(folder.glob("*.png"))}
            if "original" not in out[site][url]:
                todo.append((site, url, folder))
    if todo:
        with screenshots.renderer() as r:
            for site, url, folder in todo:
                folder.mkdir(parents=True, exist_ok=True)
                original = r.shot(url)
                images = {"original": original, **screenshots.modified_copies(r, url, original)}
                for name, image in images.items():
                    image.save(folder / f"{name}.png")
                out[site][url] = {p.stem: p for p in sorted(folder.glob("*.png"))}
    return out


def separation(cache: Path, pages_per_site: int) -> None:
    orb = Orb()
    data = render_set(cache, pages_per_site)
    feature = {}
    for pages in data.values():
        for shots in pages.values():
            for path in shots.values():
                feature[path] = orb.extract(load_picture(path))
    copies: dict[str, list[float]] = {}
    others: dict[str, list[float]] = {}
    for site, pages in data.items():
        originals = [shots["original"] for shots in pages.values()]
        for shots in pages.values():
            known = feature[shots["original"]]
            for name, path in shots.items():
                if name != "original":
                    copies.setdefault(name, []).append(orb.distance(feature[path], known))
            for other in originals:
                if other != shots["original"]:
                    others.setdefault(site, []).append(orb.distance(feature[other], known))
    yes, maybe = orb.yes_threshold, orb.maybe_threshold
    print(f"thresholds: YES <= {yes}, MAYBE <= {maybe}")
    print(f"{'modified copy':<16}{'n':>4}{'median':>8}{'max':>7}{'YES':>7}{'YES+MAYBE':>11}")
    for name, values in sorted(copies.items()):
        _row(name, values, yes, maybe)
    print(f"{'other page of':<16}{'n':>4}{'median':>8}{'min':>7}{'YES':>7}{'YES+MAYBE':>11}")
    for site, values in sorted(others.items()):
        _row(site, values, yes, maybe, low=True)
    every_copy = [d for v in copies.values() for d in v]
    every_other = [d for v in others.values() for d in v]
    print(f"all copies: {_share(every_copy, yes):.1%} YES, {_share(every_copy, maybe):.1%} YES+MAYBE; "
          f"all other pages: {_share(every_other, yes):.1%} YES, {_share(every_other, maybe):.1%} YES+MAYBE; "
          f"closest other page {min(every_other):.3f}")


def _share(values: list[float], threshold: float) -> float:
    return sum(v <= threshold for v in values) / len(values)


def _row(name: str, values: list[float], yes: float, maybe: float, low: bool = False) -> None:
    edge = min(values) if low else max(values)
    print(f"{name:<16}{len(values):>4}{statistics.median(values):>8.3f}{edge:>7.3f}"
          f"{_share(values, yes):>7.0%}{_share(values, maybe):>11.0%}")


def speed(cache: Path, pages: int) -> None:
    data = render_set(cache, pages)
    paths = [shots[name] for site in data.values() for shots in site.values()
             for name in ("original", "banner", "scrolled") if name in shots]
    pictures = [load_picture(p) for p in paths]
    assert all(Image.open(p).size == (1280, 800) for p in paths)
    orb = Orb()
    orb.extract(pictures[0])  # warm-up
    start = time.perf_counter()
    features = [orb.extract(p) for p in pictures]
    extract_ms = (time.perf_counter() - start) * 1000 / len(pictures)
    pairs = [(a, b) for a in features[:12] for b in features[:12] if a is not b]
    orb.distance(*pairs[0])
    start = time.perf_counter()
    for a, b in pairs:
        orb.distance(a, b)
    distance_ms = (time.perf_counter() - start) * 1000 / len(pairs)
    size = statistics.mean(len(f) for f in features) / 1024
    print(f"{len(pictures)} screenshots 1280x800: extract {extract_ms:.1f} ms/picture (decode excluded), "
          f"distance {distance_ms:.2f} ms/pair over {len(pairs)} pairs, feature {size:.1f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--separation", action="store_true")
    parser.add_argument("--pages", type=int, default=8, help="pages per site")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/quaid-orb-screenshots"))
    args = parser.parse_args()
    if args.separation:
        separation(args.cache, args.pages)
    else:
        speed(args.cache, min(args.pages, 4))


if __name__ == "__main__":
    main()

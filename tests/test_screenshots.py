"""The template case on real renderings: Chromium screenshots of one site's pages and their modified copies.

A page's modified copies (banner, frame, scroll, recompression, ...) must be
YES for ORB; other pages of the same site, sharing header, menus and sidebar,
must never be YES. Pages: the synthetic bank site and the installed Python
documentation (tests/screenshots.py renders them with /usr/bin/chromium).
"""

from __future__ import annotations

import pytest

from engine.algorithms.orb import Orb
from engine.picture import load_picture
from tests import screenshots

ORB = Orb()
MUST_BE_YES = (
    "recompressed", "downscaled", "cropped", "recoloured", "frame", "banner", "heading", "scrolled",
)


def _feature(image) -> bytes:
    return ORB.extract(load_picture(screenshots.encode(image)))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """url -> {"original": feature, modification: feature} for 3 synthetic and 2 Python-doc pages."""
    urls = screenshots.write_template_site(tmp_path_factory.mktemp("site"), 3)
    urls += screenshots.doc_pages("python", 2)
    out = {}
    with screenshots.renderer() as r:
        for url in urls:
            original = r.shot(url)
            copies = {
                "recompressed": screenshots.recompress(original, 55),
                "downscaled": screenshots.downscale(original, 0.6),
                "cropped": screenshots.crop_border(original),
                "recoloured": screenshots.recolour(original),
                "frame": screenshots.browser_frame(original),
                "banner": r.shot(url, banner=True),
                "heading": r.shot(url, heading=True),
                "scrolled": r.shot(url, scroll=240),
                "cookie": r.shot(url, cookie=True),
            }
            out[url] = {"original": _feature(original), **{k: _feature(v) for k, v in copies.items()}}
    return out


@pytest.mark.parametrize("modification", MUST_BE_YES)
def test_modified_copies_are_yes(site, modification: str) -> None:
    for url, features in site.items():
        distance = ORB.distance(features[modification], features["original"])
        assert distance <= ORB.yes_threshold, (url, distance)


def test_cookie_bar_is_at_worst_maybe(site) -> None:
    for url, features in site.items():
        assert ORB.distance(features["cookie"], features["original"]) <= ORB.maybe_threshold, url


def test_other_pages_of_the_same_site_are_never_yes(site) -> None:
    by_site: dict[bool, list[bytes]] = {}
    for url, features in site.items():
        by_site.setdefault("python3.11-doc" in url, []).append(features["original"])
    pairs = [(a, b) for pages in by_site.values() for a in pages for b in pages if a is not b]
    assert len(pairs) == 8
    for a, b in pairs:
        assert ORB.distance(a, b) > ORB.yes_threshold
    for url, features in site.items():  # a modified copy of one page is not another page either
        others = [f["original"] for u, f in site.items() if u != url and ("python" in u) == ("python" in url)]
        for other in others:
            assert ORB.distance(features["banner"], other) > ORB.yes_threshold

"""Region codes bring moved and contained copies of a page into a short shortlist.

Pages of one drawn template (header, menu, sidebar, rows of "text" differing per page)
are stored as 1280 x 800 viewport captures; each copy of one page is searched through
:meth:`engine.matching.Matcher.query_codes` and :meth:`engine.index.CandidateIndex.shortlist`,
the path of a real search. The shortlist is kept short (``K``) so that global hashes,
which put the template's pages close together, cannot carry the copies by luck.
"""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from engine.algorithms.region_codes import FEATURE_BYTES, RegionCodes
from engine.candidates import regions
from engine.config import AlgorithmSettings, Settings
from engine.errors import BadInput
from engine.index import CandidateIndex
from engine.matching import Matcher
from engine.picture import Picture, load_picture

WIDTH, VIEWPORT, FULL = 1280, 800, 2400  # px
K = 4  # shortlist size of these tests
PAGES = 24  # stored pages of the template


def template_page(seed: int) -> Image.Image:
    """A full-length page: the template's header, menu and sidebar; this page's own text rows."""
    rng = random.Random(seed)
    page = Image.new("RGB", (WIDTH, FULL), "white")
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, WIDTH, 90), fill=(30, 60, 120))  # header
    draw.rectangle((40, 25, 300, 65), fill=(240, 200, 40))  # logo
    for n in range(6):  # menu
        draw.rectangle((400 + 130 * n, 40, 500 + 130 * n, 55), fill=(220, 220, 240))
    draw.rectangle((1000, 110, 1260, FULL - 20), fill=(235, 238, 245))  # sidebar
    for n in range(40):
        draw.rectangle((1020, 130 + 28 * n, 1020 + 150 + 40 * (n % 3), 142 + 28 * n), fill=(60, 90, 160))
    y = 130
    while y < FULL - 60:  # this page's content: headings, text rows, boxes
        if rng.random() < 0.12:
            draw.rectangle((40, y, 40 + rng.randrange(200, 700), y + 26), fill=(20, 20, 20))
            y += 50
        elif rng.random() < 0.1:
            draw.rectangle((40, y, rng.randrange(400, 960), y + rng.randrange(60, 160)),
                           fill=tuple(rng.randrange(120, 230) for _ in range(3)))
            y += 190
        else:
            x = 40
            while x < 940:
                word = rng.randrange(30, 120)
                draw.rectangle((x, y, min(x + word, 960), y + 10), fill=(50, 50, 50))
                x += word + rng.randrange(8, 16)
            y += 24
    return page


def picture(image: Image.Image) -> Picture:
    out = io.BytesIO()
    image.save(out, "PNG")
    return load_picture(out.getvalue())


def viewport(page: Image.Image, top: int = 0) -> Image.Image:
    return page.crop((0, top, WIDTH, top + VIEWPORT))


def bannered(page: Image.Image) -> Image.Image:
    out = Image.new("RGB", (WIDTH, VIEWPORT), (200, 30, 30))
    out.paste(viewport(page), (0, 110))  # a 110 px banner pushes the page down
    return out


def on_desktop(page: Image.Image) -> Image.Image:
    """The page in a window on a 1920 x 1080 desktop with a task bar, downscaled to 1280 x 720."""
    desktop = Image.new("RGB", (1920, 1080), (40, 110, 90))
    draw = ImageDraw.Draw(desktop)
    draw.rectangle((0, 1040, 1920, 1080), fill=(20, 20, 30))  # task bar
    draw.rectangle((300, 100, 300 + WIDTH, 100 + 40), fill=(210, 210, 215))  # window title
    desktop.paste(viewport(page), (300, 140))
    return desktop.resize((1280, 720), Image.Resampling.LANCZOS)


def consent_sheet(page: Image.Image) -> Image.Image:
    """The viewport dimmed behind a wide cookie sheet (72 % of the width, centred, with its own rows)."""
    dimmed = Image.eval(viewport(page), lambda level: level // 2)
    draw = ImageDraw.Draw(dimmed)
    left, top, right, bottom = 179, 210, 1101, 590
    draw.rectangle((left, top, right, bottom), fill="white")
    for n in range(4):
        draw.rectangle((left + 30, top + 40 + 50 * n, left + 330 + 60 * (n % 4), top + 52 + 50 * n),
                       fill=(40, 40, 40))
    return dimmed


COPIES = {
    "full-page": lambda page: page,
    "scroll": lambda page: viewport(page, 360),
    "banner": bannered,
    "mirror": lambda page: viewport(page).transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "desktop": on_desktop,
}


@pytest.fixture(scope="module")
def pages() -> list[Image.Image]:
    return [template_page(seed) for seed in range(PAGES)]


@pytest.fixture(scope="module")
def stored_features(pages: list[Image.Image]) -> list[dict[str, bytes]]:
    """Every prefilter feature (region codes included) of each page's viewport capture."""
    matcher = cheap_matcher()
    return [{a.name: a.extract(picture(viewport(page))) for a in matcher.algorithms if a.prefilter}
            for page in pages]


def shortlisted(matcher: Matcher, stored: list[dict[str, bytes]], copy: Image.Image) -> list[str]:
    index = CandidateIndex()
    for n, features in enumerate(stored):
        index.upsert(f"page{n}", matcher.prefilter_codes(features))
    query = matcher.query(picture(copy))
    return [c.id for c in index.shortlist(matcher.query_codes(query), K)]


def cheap_matcher(**algorithms: AlgorithmSettings) -> Matcher:
    off = {name: AlgorithmSettings(enabled=False) for name in ("goldberg-screen", "forbild-screen", "orb")}
    return Matcher(Settings(algorithms=off | algorithms))


@pytest.mark.parametrize("kind", sorted(COPIES))
def test_region_codes_shortlist_the_copy(pages: list[Image.Image], stored_features, kind: str) -> None:
    found = shortlisted(cheap_matcher(), stored_features, COPIES[kind](pages[5]))
    assert "page5" in found, f"{kind}: {found}"


def test_without_region_codes_global_hashes_lose_these_copies(pages, stored_features) -> None:
    """The control: the same stored pages and copies with the region codes switched off."""
    matcher = cheap_matcher(regions=AlgorithmSettings(enabled=False))
    lost = [kind for kind, make in COPIES.items()
            if "page5" not in shortlisted(matcher, stored_features, make(pages[5]))]
    assert len(lost) >= 3, lost


def test_a_dialog_is_masked_with_the_level_around_it_in_an_extra_probe(pages) -> None:
    """A dimmed page behind a wide sheet: one more probe page, the sheet filled with the page's level."""
    copy = picture(consent_sheet(pages[5]))
    left, top, right, bottom = regions.boxes(copy.grey)[0]
    sheet = (179, 210, 1101, 590)  # the sheet's own box, not the header's (found on a half-size copy)
    box = (left, top, right, bottom)
    assert all(abs(found - drawn) <= 2 for found, drawn in zip(box, sheet, strict=True))
    filled = regions.masked(copy.grey, (left, top, right, bottom))
    outside = np.ones(copy.grey.shape, bool)
    outside[top:bottom, left:right] = False
    assert (filled[~outside] == int(np.median(copy.grey[outside]))).all()
    assert (filled[outside] == copy.grey[outside]).all()
    plain = regions.page_grey(copy)
    # the page, its mirror, the framed page and the masked page
    assert len(regions.query_probes(copy)) > 2 * len(regions.probe_codes(plain))


def test_region_codes_never_vote(pages: list[Image.Image]) -> None:
    matcher = cheap_matcher()
    stored = picture(viewport(pages[1]))
    verdict = matcher.compare(matcher.query(picture(viewport(pages[1]))), matcher.extract(stored))
    assert "regions" in matcher.extract(stored) and "regions" not in verdict.algorithms
    assert set(verdict.algorithms) == {"phash", "dhash", "pdq-screen"}


def test_feature_layout_and_flat_bands() -> None:
    algorithm = RegionCodes()
    blank = algorithm.extract(picture(Image.new("RGB", (WIDTH, VIEWPORT), "white")))
    assert len(blank) == FEATURE_BYTES and blank[-1] == 0  # flat bands get no code
    assert algorithm.codes(blank) == {}
    short = algorithm.extract(picture(viewport(template_page(3)).crop((0, 0, WIDTH, 500))))
    assert short[-1] == 0b0011  # a 500 px page holds the bands at 0 and 160 px (320 px tall) only
    with pytest.raises(BadInput):
        algorithm.slots(short[:-1] + bytes([0b10000]))
    with pytest.raises(BadInput):
        algorithm.distance(short, short[:5])


def test_probes_follow_the_page_down_its_length() -> None:
    grey = regions.page_grey(picture(template_page(7)))
    stored = regions.stored_codes(regions.page_grey(picture(viewport(template_page(7), 600))))
    probes = set(regions.probe_codes(grey))
    assert stored[0] in probes or any(
        (int.from_bytes(stored[0], "big") ^ int.from_bytes(p, "big")).bit_count() <= 6 for p in probes)
    assert len(regions.probe_codes(grey)) <= regions.MAX_PROBES


def test_region_codes_survive_the_store_and_an_index_rebuild(redis, tmp_path, pages) -> None:
    """Codes written by ``add`` to Redis come back in another process's index (the mirror's rebuild)."""
    from engine.config import load_settings
    from engine.core import Quaid

    settings = load_settings(home=tmp_path / "home", shortlist=K)
    writer = Quaid(redis, settings)
    try:
        for n, page in enumerate(pages[:12]):
            out = io.BytesIO()
            viewport(page).save(out, "PNG")
            writer.add(out.getvalue(), name=f"page{n}")
    finally:
        writer.close()
    reader = Quaid(redis, settings)  # a fresh process: its index is rebuilt from Redis
    try:
        reader.mirror.sync()
        full_page = reader.matcher.query(picture(pages[5]))
        found = reader.mirror.shortlist(reader.matcher.query_codes(full_page), K)
        assert "page5" in {reader.get(c.id).name for c in found}
        entries = reader.records.index_entries([c.id for c in found])
        assert all({f"regions{i}" for i in range(4)} <= set(e.codes) for e in entries.values())
    finally:
        reader.close()


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (1, 500), (500, 1), (31, 40), (33, 33), (64, 20)])
def test_tiny_and_thin_pictures_get_region_probes_without_error(size):
    """A 1-pixel picture made OpenCV's resize fail in the frame finder (a 500 on search)."""
    rng = np.random.default_rng(sum(size))
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    matcher = Matcher(Settings())
    picture = load_picture(buffer.getvalue())
    matcher.extract(picture)
    codes = matcher.query_codes(matcher.query(picture))
    assert {"phash", "dhash", "pdq-screen"} <= set(codes)

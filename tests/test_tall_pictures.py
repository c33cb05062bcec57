"""Full-page captures keep their width: the viewport capture of a page and its full-page capture match.

Lookyloo and AIL's crawler store full-page captures, many screens tall; analysts and sandboxes
capture the viewport. A picture taller than wide is normalised by its width (its top four working
sides kept) and ORB verifies its top screens (``ORB_TALL`` widths), so the first screen of a
1280 x 6000 capture is seen at the size of a 1280 x 800 viewport capture, not at a fifth of it.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from engine.algorithms.orb import ORB_TALL, Orb, verified_part
from engine.decision import Decision
from engine.picture import DEFAULT_WORKING_SIDE, load_picture, working_scale
from tests.test_orb import site_page

ORB = Orb()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def full_page(screens: int) -> Image.Image:
    """A page ``screens`` viewports tall: its first screen is ``site_page(3)``, then more article text."""
    page = Image.new("RGB", (1280, 800 * screens), "white")
    page.paste(site_page(3), (0, 0))
    for i in range(1, screens):
        page.paste(site_page(3 + i).crop((240, 150, 1280, 800)), (240, 800 * i))
    return page


@pytest.mark.parametrize("size, expected", [
    ((1280, 6000), (1280, 5120)),  # full-page capture: width kept, its top four working sides
    ((2560, 16000), (1280, 5120)),  # a HiDPI full-page capture: halved, then its top four working sides
    ((1280, 2400), (1280, 2400)),  # three screens: kept whole
    ((1600, 1200), (1280, 960)),  # landscape: long side to the working side, as ever
    ((1500, 2000), (1280, 1707)),  # portrait photo: width to the working side
    ((640, 480), (640, 480)),  # never enlarged
])
def test_pictures_taller_than_wide_are_scaled_by_their_width(size, expected) -> None:
    picture = load_picture(png(Image.new("RGB", size, "white")))
    assert (picture.width, picture.height) == expected


def test_the_scale_is_continuous_across_square() -> None:
    side = DEFAULT_WORKING_SIDE
    square, taller = (load_picture(png(Image.new("RGB", size, "white")))
                      for size in ((2000, 2000), (2000, 2001)))
    assert (square.width, square.height) == (side, side)
    assert (taller.width, taller.height) == (side, round(2001 * side / 2000))
    assert working_scale(1000, side) == 1.0  # tall: by the width (and cut at TALL_FACTOR sides)


def test_orb_verifies_the_top_screens_of_a_tall_picture() -> None:
    picture = load_picture(png(full_page(6)))
    part = verified_part(picture.grey)
    assert part.shape == (round(ORB_TALL * picture.width), picture.width)


@pytest.mark.parametrize("screens", [3, 8, 16])
def test_a_viewport_capture_matches_the_full_page_capture_of_its_page(screens) -> None:
    viewport = ORB.extract(load_picture(png(site_page(3))))
    tall = ORB.extract(load_picture(png(full_page(screens))))
    comparison = ORB.compare(viewport, tall)
    assert comparison.distance <= ORB.yes_threshold and comparison.reason is None


def test_the_full_page_capture_of_another_page_of_the_site_is_not_accepted() -> None:
    viewport = ORB.extract(load_picture(png(site_page(3))))
    other = ORB.extract(load_picture(png(full_page(6).crop((0, 800, 1280, 4800)))))  # starts at site_page(4)
    assert ORB.compare(viewport, other).reason is not None or ORB.compare(viewport, other).distance > 0.2


def test_a_stored_full_page_capture_is_found_and_accepted_for_its_viewport(quaid) -> None:
    stored = quaid.add(png(full_page(8)), name="full page")
    quaid.add(png(site_page(20)), name="another page")
    answer = quaid.search(png(site_page(3)))
    assert answer.matches and answer.matches[0].id == stored.id
    assert answer.matches[0].decision is Decision.ACCEPTED

"""A page shrunk into a window frame (a sandbox report, a desktop screenshot) is verified at its own scale.

ORB brings a picture to one canonical width as a whole; the page inside a window that covers
three quarters of the screen then shows its text between two of ORB's pyramid levels, and too few
descriptors match to rank or align the pair. The query's page inside the frame, brought to the
canonical width on its own, is compared as well (:meth:`engine.algorithms.orb.Orb.query_features`).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from engine.algorithms import orb as orb_module
from engine.algorithms.base import Comparison
from engine.algorithms.orb import Orb
from engine.decision import Decision
from engine.matching import strongest
from engine.picture import load_picture
from tests.test_orb import site_page

ORB = Orb()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def in_sandbox_window(page: Image.Image, scale: float = 0.74) -> Image.Image:
    """``page`` scaled into a window with a title bar on a dark desktop with a task bar."""
    screen = Image.new("RGB", page.size, (40, 52, 70))
    width = round(page.width * scale)
    shown = page.resize((width, round(page.height * scale)), Image.Resampling.LANCZOS)
    shown = shown.crop((0, 0, width, min(shown.height, page.height - 36 - 28 - 40)))
    x, y = 60, 20
    screen.paste(shown, (x, y + 28))
    draw = ImageDraw.Draw(screen)
    draw.rectangle((x, y, x + width - 1, y + 27), fill=(0, 84, 153))
    draw.text((x + 10, y + 6), "Internet Explorer - sample.exe", fill="white")
    draw.rectangle((0, page.height - 36, page.width, page.height), fill=(28, 28, 36))
    return screen


def test_a_framed_query_offers_its_page_as_a_second_view() -> None:
    framed = load_picture(png(in_sandbox_window(site_page(3))))
    plain = load_picture(png(site_page(3)))
    assert len(ORB.query_features(framed)) == 2
    assert len(ORB.query_features(plain)) == 1  # a page's own header rules span its width: no view


def test_the_framed_view_aligns_the_page_the_whole_picture_does_not() -> None:
    stored = ORB.extract(load_picture(png(site_page(3))))
    whole, framed = ORB.query_features(load_picture(png(in_sandbox_window(site_page(3)))))
    assert ORB.compare(whole, stored).distance == 1.0
    assert ORB.compare(framed, stored).distance <= ORB.yes_threshold


def test_the_framed_view_of_another_page_is_not_accepted() -> None:
    stored = ORB.extract(load_picture(png(site_page(3))))
    views = ORB.query_features(load_picture(png(in_sandbox_window(site_page(9)))))
    closest = min((ORB.compare(view, stored) for view in views), key=lambda c: c.distance)
    assert closest.distance > ORB.yes_threshold or closest.reason is not None


@pytest.mark.parametrize("framed_width", [orb_module.FRAMED_WIDTH, 0.0])
def test_a_sandbox_screenshot_finds_its_page_through_the_search(quaid, monkeypatch, framed_width) -> None:
    monkeypatch.setattr(orb_module, "FRAMED_WIDTH", framed_width)  # 0: the framed view switched off
    stored = quaid.add(png(site_page(3)), name="page")
    for seed in range(4, 10):
        quaid.add(png(site_page(seed)), name=f"sibling {seed}")
    answer = quaid.search(png(in_sandbox_window(site_page(3))), include_rejected=True)
    found = answer.matches and answer.matches[0].id == stored.id and \
        answer.matches[0].decision is Decision.ACCEPTED
    assert found == (framed_width > 0)  # without the framed view, the whole picture does not align


def test_of_the_query_views_the_strongest_vote_wins_then_the_distance() -> None:
    whole_with_title_bar = Comparison(0.02, "same-template")  # closer, but a rewritten line: MAYBE at best
    framed_page = Comparison(0.05, None)  # the page alone aligns cleanly: YES
    assert strongest([whole_with_title_bar, framed_page], 0.078, 0.158) is framed_page
    far = Comparison(0.5, None)
    assert strongest([far, whole_with_title_bar], 0.078, 0.158) is whole_with_title_bar  # MAYBE beats NO
    assert strongest([Comparison(0.06, None), framed_page], 0.078, 0.158) == Comparison(0.05, None)

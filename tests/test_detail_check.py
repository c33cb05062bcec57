"""The verifier's second look at the working resolution: one replaced word makes a sibling page.

Drawn pages of one template (tests/test_orb.py's ``site_page``): the thumbnail
comparison cannot see a body word replaced by another of the same length; the
detail check can, and gives the reason ``same-template``. Copies that lose
resolution (downscaled, recompressed) or add a block the thumbnail explains
keep no reason.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from engine.algorithms import aligned_diff, detail_check
from engine.algorithms.alignment import align, invert, rescale
from engine.algorithms.orb import SAME_TEMPLATE, Orb, unexplained
from engine.algorithms.orb_feature import unpack
from engine.picture import load_picture
from tests.test_orb import FONT, site_page

ORB = Orb()


def feature(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return ORB.extract(load_picture(out.getvalue()))


def with_word(page: Image.Image, word: str, at: tuple[int, int] = (280, 150)) -> Image.Image:
    """``page`` with the body word at ``at`` covered and ``word`` written in its place."""
    page = page.copy()
    draw = ImageDraw.Draw(page)
    left, top, right, bottom = draw.textbbox(at, "mmmmmmmmm", font=FONT)
    draw.rectangle((left, top, right, bottom), fill="white")
    draw.text(at, word, fill=(30, 30, 30), font=FONT)
    return page


def thumbnail_readings(a: bytes, b: bytes):
    """What the thumbnail comparison alone reads of a pair, both directions."""
    fa, fb = unpack(min(a, b)), unpack(max(a, b))
    models = [rescale(m, fa.thumb_scale, fb.thumb_scale)
              for m in align(fa.points, fa.descriptors, fb.points, fb.descriptors).models]
    ab = aligned_diff.difference(fa.thumb, fb.thumb, models, fa.cell_stats)
    ba = aligned_diff.difference(fb.thumb, fa.thumb, [invert(m) for m in models], fb.cell_stats)
    return unexplained(ab), unexplained(ba)


@pytest.fixture(scope="module")
def pages() -> dict[str, bytes]:
    base = with_word(site_page(7), "ulrdseat")
    return {"page": feature(base), "one-word": feature(with_word(site_page(7), "pomkwing")),
            "base": base}


def test_one_replaced_word_escapes_the_thumbnail(pages) -> None:
    """Why the detail check exists: at the thumbnail's resolution the two pages read as identical."""
    for reading in thumbnail_readings(pages["page"], pages["one-word"]):
        assert reading.rewritten == 0 and reading.share <= 0.02


def test_one_replaced_word_is_a_sibling_page(pages) -> None:
    comparison = ORB.compare(pages["page"], pages["one-word"])
    assert comparison.distance <= 0.02 and comparison.reason == SAME_TEMPLATE


def test_the_same_page_again_has_no_reason(pages) -> None:
    again = feature(pages["base"].copy())
    assert ORB.compare(pages["page"], again).reason is None


@pytest.mark.parametrize("make", [
    lambda im: im.resize((800, 500), Image.Resampling.LANCZOS),
    lambda im: im.resize((1180, 738), Image.Resampling.BILINEAR),
], ids=["downscaled", "rescaled"])
def test_a_copy_at_another_resolution_has_no_reason(pages, make) -> None:
    """Both pictures are compared at the lower resolution, with the resampled pair's tolerance."""
    comparison = ORB.compare(pages["page"], feature(make(pages["base"])))
    assert comparison.distance <= ORB.yes_threshold and comparison.reason is None


def test_a_recompressed_copy_has_no_reason(pages) -> None:
    comparison = ORB.compare(pages["page"], feature(pages["base"], "JPEG", quality=40))
    assert comparison.distance <= ORB.yes_threshold and comparison.reason is None


def test_a_banner_the_thumbnail_explains_is_left_out(pages) -> None:
    """The banner's box (and its border, weak on the thumbnail) is not compared again."""
    base = pages["base"]
    bannered = Image.new("RGB", base.size, "white")
    bannered.paste(base.crop((0, 0, base.width, base.height - 90)), (0, 90))
    ImageDraw.Draw(bannered).rectangle((0, 0, base.width, 89), fill=(190, 0, 20))
    ImageDraw.Draw(bannered).text((30, 30), "Verify your account now", fill="white", font=FONT)
    assert ORB.compare(pages["page"], feature(bannered)).reason is None


def test_the_detail_picture_is_the_working_picture_unresampled() -> None:
    grey = np.arange(800 * 1280, dtype=np.uint32).reshape(800, 1280).astype(np.uint8)
    assert detail_check.detail_picture(grey) is grey
    wide = np.zeros((1000, 2560), np.uint8)
    assert detail_check.detail_picture(wide).shape == (500, 1280)
    tall = np.zeros((2560, 1600), np.uint8)  # ORB's verified part of a tall picture: scaled by its width
    assert detail_check.detail_picture(tall).shape == (2048, 1280)


@pytest.mark.parametrize("shift", [37, 203])
def test_a_scrolled_copy_has_no_reason(pages, shift) -> None:
    """The line the scroll cuts at the overlap's edge is cut across a detail cell: not rewritten."""
    base = pages["base"]
    scrolled = Image.new("RGB", base.size, "white")
    scrolled.paste(base.crop((0, shift, base.width, base.height)), (0, 0))
    comparison = ORB.compare(pages["page"], feature(scrolled))
    assert comparison.distance <= ORB.yes_threshold and comparison.reason is None


def _grey(page: Image.Image) -> np.ndarray:
    return np.asarray(page.convert("L"))


@pytest.mark.parametrize("rows, expected", [(slice(797, 800), False), (slice(397, 400), True)],
                         ids=["cut-at-the-edge", "inside"])
def test_a_strip_of_changed_pixels_counts_only_inside_the_overlap(pages, rows, expected) -> None:
    """Three pixel rows of text changed: at the overlap's outermost row, a line cut by a scroll."""
    a = _grey(pages["base"])
    b = a.copy()
    b[rows, 280:1200] = 255 - b[rows, 280:1200] // 2  # ink becomes paper and paper grey
    identity = [np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])]
    thumbs = [np.asarray(Image.fromarray(x).resize((512, 320), Image.Resampling.BOX)) for x in (a, b)]
    coarse_ab = aligned_diff.difference(thumbs[0], thumbs[1], identity)
    coarse_ba = aligned_diff.difference(thumbs[1], thumbs[0], identity)
    assert detail_check.rewritten(a, b, identity, coarse_ab, coarse_ba) is expected

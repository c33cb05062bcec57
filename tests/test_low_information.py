"""The low-information detector on generated noise pages and on pages that carry information.

Generated pages come from ``tests/noise_pages.py`` (Pillow and the project's Chromium renderer).
The figures on the evaluation set's real screenshots are ``benchmarks/noise_detector.py``'s
(the set is not in the repository).
"""

from __future__ import annotations

import io
import random

import pytest
from ail_standin import page as ail_page
from drawing import drawn
from PIL import Image

from engine import prepared_wire
from engine.low_information import InformationMeasures, is_low_information, measure
from engine.picture import load_picture
from engine.prepared import Prepared
from tests.noise_pages import placeholder, png, rendered, rendered_pages, sign_in_form, spinner
from tests.test_orb import site_page


def flagged(data: bytes) -> bool:
    return is_low_information(measure(load_picture(data)))


@pytest.mark.parametrize("colour", ["white", "black", "#f1f3f4", "#1e1e1e", "#0067b8"])
@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080), (390, 844), (64, 64)])
def test_a_blank_capture_is_flagged_whatever_its_colour_and_size(colour, size):
    measures = measure(load_picture(png(Image.new("RGB", size, colour))))
    assert measures == InformationMeasures(pdq_quality=0, ink=0.0, entropy=0.0)
    assert is_low_information(measures)


def test_spinners_and_placeholders_are_flagged():
    spinners = [flagged(png(spinner(random.Random(n)))) for n in range(10)]
    placeholders = [flagged(png(placeholder(random.Random(n)))) for n in range(10)]
    assert all(spinners)
    assert sum(placeholders) >= 7  # a placeholder on a small window shows its icon and text larger


@pytest.mark.parametrize("seed", range(8))
def test_drawn_pages_and_photos_like_pictures_are_not_flagged(seed):
    assert not flagged(drawn(seed))
    assert not flagged(png(site_page(seed)))
    assert not flagged(png(ail_page(seed)))


def test_a_page_with_one_line_of_text_is_not_flagged_for_its_ink_alone():
    # sparse ink but a tinted header bar: the entropy says it is a designed page
    image = Image.new("RGB", (1280, 800), "white")
    image.paste((30, 60, 120), (0, 0, 1280, 90))
    assert not flagged(png(image))


@pytest.mark.browser
def test_a_bare_sign_in_form_is_never_flagged_at_any_window_size():
    sizes = ((1024, 768), (1280, 800), (1920, 1080), (2560, 1440), (390, 844))
    for size, data in zip(sizes, rendered(sign_in_form(), sizes), strict=True):
        assert not flagged(data), size


@pytest.mark.browser
def test_rendered_blank_and_default_server_pages_are_flagged():
    pages = list(rendered_pages(4, seed=3, kinds=("blank", "default-server")))
    blank = [flagged(data) for kind, data in pages if kind == "blank"]
    assert blank == [True] * 4
    # "It works!" alone is flagged; nginx's welcome page (a heading and three lines) is sparse
    # text a real page can be too: the noise bank catches it once marked
    works = [flagged(data) for kind, data in pages if kind == "default-server"]
    assert len(works) == 4 and any(works)


def test_the_quality_pdq_screen_computed_is_the_detectors_own():
    from engine.config import load_settings
    from engine.low_information import known_pdq_quality
    from engine.matching import Matcher

    for data in (drawn(3), png(Image.new("RGB", (1280, 800), "white")), png(spinner(random.Random(1)))):
        picture = load_picture(data)
        query = Matcher(load_settings()).query(picture)
        assert known_pdq_quality({"pdq-screen": query.features("pdq-screen")}) == measure(picture).pdq_quality
    assert known_pdq_quality({}) is None


def test_the_measures_cross_the_worker_wire_and_bad_ones_are_refused():
    measures = {"pdq_quality": 0, "ink": 0.0, "entropy": 0.0}
    prepared = Prepared("ab" * 32, 10, 4, 4, "PNG", {"pdq": [b"x"]}, {"c": [b"y"]}, None, measures)
    assert prepared_wire.decode(prepared_wire.encode(prepared)).low_information == measures
    plain = Prepared("ab" * 32, 10, 4, 4, "PNG", {}, {}, None)
    assert prepared_wire.decode(prepared_wire.encode(plain)).low_information is None
    forged = prepared_wire.encode(plain)[:-4] + prepared_wire.LENGTH.pack(9) + b'{"a":"b"}'
    with pytest.raises(prepared_wire.MalformedResult):
        prepared_wire.decode(forged)


def test_measuring_takes_the_thumbnail_not_the_full_picture():
    big = Image.new("RGB", (4000, 3000), "white")
    big.paste((0, 0, 0), (100, 100, 1100, 1100))  # 1/12 of the picture
    out = io.BytesIO()
    big.save(out, "PNG")
    picture = load_picture(out.getvalue())
    assert max(picture.grey_thumbnail.shape) <= 512
    assert 0.07 < measure(picture).ink < 0.10

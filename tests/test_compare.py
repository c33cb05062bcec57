"""The visual difference: what the reviewer sees, through the engine, the API (guard included), the CLI.

The pages are the drawn site of ``tests/test_orb.py``: a copy whose heading a phishing kit
rewrote, a sibling page of the same template, the page itself.
"""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.compare import compare_query, compare_stored
from engine.errors import NotComparable, NotFound
from engine.service.app import create_app
from engine.visual_diff import REWRITTEN_COLOUR, render
from tests.drawing import drawn
from tests.test_hash_search import exchanged, png
from tests.test_orb import site_page
from tests.test_same_template import feature, sibling_page

HEADERS = {"X-Quaid-Request": "1"}
HEADING = "Please confirm your card details"


def red_pixels(data: bytes, box: tuple[int, int, int, int] | None = None) -> int:
    """Pixels drawn in the rewritten-region colour (within ``box``: left, top, right, bottom)."""
    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    if box is not None:
        image = image[box[1]:box[3], box[0]:box[2]]
    return int((np.abs(image - np.array(REWRITTEN_COLOUR)).sum(axis=2) < 60).sum())


@pytest.fixture(scope="module")
def features() -> dict[str, bytes]:
    return {"page": feature(site_page(5)), "heading": feature(site_page(5, heading=HEADING)),
            "sibling": feature(sibling_page(5, 1))}


# --- the drawing ------------------------------------------------------------------------

def test_identical_pictures_have_nothing_marked(features):
    diff = render(features["page"], features["page"])
    assert diff.aligned and diff.share == 0.0 and diff.rewritten == 0
    assert red_pixels(diff.png) == 0


def test_a_rewritten_heading_is_boxed_in_red_where_the_heading_is(features):
    diff = render(features["page"], features["heading"])
    assert diff.aligned and diff.rewritten >= 1
    # the heading is at x 280-800, y 100-125 of the 1280-px page; panels are 800 px wide under a
    # 36-px caption: boxes there, and none in the sidebar or the body text below
    heading_area = (170, 36 + 55, 520, 36 + 85)
    assert red_pixels(diff.png, heading_area) > 50
    assert red_pixels(diff.png, (0, 36 + 120, 800, 36 + 500)) == 0


def test_a_sibling_page_shows_its_rewritten_lines(features):
    diff = render(features["page"], features["sibling"])
    assert diff.rewritten >= 2 and red_pixels(diff.png) > 200


@pytest.mark.parametrize("modify", ["downscale", "recompress", "crop_border", "browser_frame", "recolour"])
def test_a_modified_copy_shows_no_rewritten_content(features, modify):
    """What the verifier accepts is drawn without red: the word-level look compares both pictures
    at the lower of their resolutions, as the verifier's detail check does."""
    from tests import screenshots

    copy = getattr(screenshots, modify)(site_page(5)).convert("RGB")
    diff = render(features["page"], feature(copy))
    assert diff.aligned and diff.rewritten == 0 and red_pixels(diff.png) == 0


def test_unrelated_pictures_are_shown_unaligned():
    from engine.algorithms.orb import Orb
    from engine.picture import load_picture

    a, b = (Orb().extract(load_picture(drawn(seed))) for seed in (1, 2))
    diff = render(a, b)
    assert not diff.aligned and diff.share == 1.0 and red_pixels(diff.png) == 0
    assert diff.headers()["X-Quaid-Aligned"] == "false"


# --- the engine facade ------------------------------------------------------------------

def test_stored_and_query_comparisons(quaid):
    page, heading = png(site_page(5)), png(site_page(5, heading=HEADING))
    a, b = quaid.add(page).id, quaid.add(heading).id
    assert compare_stored(quaid, a, b).rewritten >= 1
    assert compare_query(quaid, png(site_page(5, heading=HEADING)), a).rewritten >= 1
    with pytest.raises(NotFound):
        compare_stored(quaid, a, "0" * 64)


def test_a_hash_only_reference_cannot_be_drawn(quaid):
    a = quaid.add(png(site_page(5))).id
    reference = quaid.add_hashes({"pdq": exchanged(drawn(40))["pdq"]}).id
    with pytest.raises(NotComparable, match="hashes only"):
        compare_stored(quaid, a, reference)


# --- the API ----------------------------------------------------------------------------

@pytest.fixture
def client(quaid):
    return create_app(replace(quaid.settings), quaid=quaid).test_client()


@pytest.fixture
def stored(quaid) -> dict[str, str]:
    return {"page": quaid.add(png(site_page(5)), name="page").id,
            "heading": quaid.add(png(site_page(5, heading=HEADING)), name="heading").id,
            "hashes": quaid.add_hashes({"pdq": exchanged(drawn(40))["pdq"]}).id}


def test_get_compare_answers_a_png_with_its_numbers(client, stored):
    answer = client.get(f"/api/v1/compare?a={stored['page']}&b={stored['heading']}")
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    assert answer.headers["X-Quaid-Aligned"] == "true"
    assert int(answer.headers["X-Quaid-Rewritten-Regions"]) >= 1
    assert red_pixels(answer.data) > 50


@pytest.mark.parametrize("query, status, words", [
    ("a={page}&b=" + "0" * 64, 404, "no picture"),
    ("a={page}&b=xyz", 400, "64 hex"),
    ("a={page}", 400, "b=<64 hex"),
    ("a={page}&b={hashes}", 422, "hashes only"),
])
def test_get_compare_refuses_bad_ids_with_json(client, stored, query, status, words):
    answer = client.get("/api/v1/compare?" + query.format(**stored))
    assert answer.status_code == status and words in answer.get_json()["error"]


def test_post_compare_draws_an_upload_against_a_stored_picture(client, stored):
    upload = png(site_page(5, heading=HEADING))
    answer = client.post("/api/v1/compare", headers=HEADERS,
                         data={"b": stored["page"], "file": (io.BytesIO(upload), "q.png")})
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    assert int(answer.headers["X-Quaid-Rewritten-Regions"]) >= 1


def test_post_compare_errors(client, stored):
    not_a_picture = client.post("/api/v1/compare", headers=HEADERS,
                                data={"b": stored["page"], "file": (io.BytesIO(b"<html>"), "q.png")})
    assert not_a_picture.status_code == 415 and "error" in not_a_picture.get_json()
    unknown = client.post("/api/v1/compare", headers=HEADERS,
                          data={"b": "1" * 64, "file": (io.BytesIO(png(site_page(5))), "q.png")})
    assert unknown.status_code == 404 and "error" in unknown.get_json()


def test_the_guard_applies_to_compare(client, stored):
    forged = client.post("/api/v1/compare", data={"b": stored["page"],
                                                   "file": (io.BytesIO(png(site_page(5))), "q.png")})
    assert forged.status_code == 403  # a form another web page could send: no X-Quaid-Request
    foreign = client.get(f"/api/v1/compare?a={stored['page']}&b={stored['heading']}",
                         headers={"Origin": "https://phish.example"})
    assert foreign.status_code == 403
    rebound = client.get(f"/api/v1/compare?a={stored['page']}&b={stored['heading']}",
                         headers={"Host": "attacker.example"})
    assert rebound.status_code == 421


def test_a_review_item_is_drawn_without_the_query_being_stored(client, quaid, stored):
    found = client.post("/api/v1/search", headers=HEADERS,
                        data={"file": (io.BytesIO(png(sibling_page(5, 1))), "sibling.png")}).get_json()
    assert any(m["decision"] == "to-review" for m in found["matches"]), found
    items = client.get("/api/v1/review").get_json()["items"]
    assert items
    answer = client.get(f"/api/v1/review/{items[0]['item']}/compare")
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    assert int(answer.headers["X-Quaid-Rewritten-Regions"]) >= 1
    assert client.get("/api/v1/review/" + "0" * 32 + "/compare").status_code == 404


# --- the CLI ----------------------------------------------------------------------------

def test_cli_compare_writes_the_png(local_store, tmp_path, capsys):
    page, heading = tmp_path / "page.png", tmp_path / "heading.png"
    page.write_bytes(png(site_page(5)))
    heading.write_bytes(png(site_page(5, heading=HEADING)))
    assert main(["add", str(page), str(heading)]) == 0
    capsys.readouterr()
    from hashlib import sha256

    a, b = (sha256(p.read_bytes()).hexdigest() for p in (page, heading))
    out = tmp_path / "diff.png"
    assert main(["compare", a[:12], b[:12], "-o", str(out)]) == 0
    assert "rewritten region" in capsys.readouterr().out and red_pixels(out.read_bytes()) > 50
    assert main(["compare", str(heading), a, "-o", str(tmp_path / "q.png")]) == 0
    assert main(["compare", a, "f" * 64, "-o", str(tmp_path / "x.png")]) == 2
    assert "no picture" in capsys.readouterr().err


def test_the_queue_keeps_the_features_of_the_newest_searched_pictures_only(quaid, monkeypatch):
    from engine import review
    from engine.compare import compare_review

    queue = review.ReviewQueue(quaid.redis)
    monkeypatch.setattr(review, "KEPT_QUERY_FEATURES", 2)
    quaid.add(png(site_page(5)))
    items = []
    for n in range(3):  # three searched pictures, each with a to-review match
        query = png(sibling_page(5, n + 1))
        found = quaid.search(query)
        assert found.matches and found.matches[0].decision.value == "to-review"
        items += queue.record(query, f"q{n}", found.to_json(), review._orb_features(found.query))
    assert len(items) == 3
    with pytest.raises(NotComparable, match="no longer kept"):
        compare_review(quaid, queue, items[0])  # the oldest query's features were dropped
    assert compare_review(quaid, queue, items[2]).rewritten >= 1
    quaid.add(png(sibling_page(5, 1)))  # once the query is stored, its item is drawn from the store
    assert compare_review(quaid, queue, items[0]).aligned

"""The web UI's picture page (``#/picture/<id>``, where MISP's and AIL's links lead) in a real headless
Chromium against a real ``quaid serve``: the picture, its record, its cluster and its matches with each
algorithm's vote; and the read-only API route behind it. Any JavaScript error fails the test.
"""

from __future__ import annotations

import json

import pytest
from browser_support import checked_page
from drawing import drawn, variant
from serverproc import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("ui-picture")) as proc:
        yield proc


def add(server, data: bytes, name: str, **fields) -> str:
    response = server.post("/api/v1/pictures", files={"file": (name, data)}, data={"name": name, **fields})
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def test_matches_route_lists_the_stored_pictures_matches(server):
    original = add(server, drawn(801, size=(1280, 800)), "login.png")
    copy = add(server, variant(drawn(801, size=(1280, 800)), 0.8), "copy.jpg")
    add(server, drawn(802, size=(1280, 800)), "other.png")
    answer = server.get(f"/api/v1/pictures/{original}/matches").json()
    assert answer["id"] == original
    assert [m["id"] for m in answer["matches"]] == [copy]
    assert answer["matches"][0]["decision"] == "accepted" and answer["matches"][0]["algorithms"]
    assert server.get(f"/api/v1/pictures/{'0' * 64}/matches").status_code == 404
    bad = server.get("/api/v1/pictures/not-an-id/matches")
    assert bad.status_code == 400 and "error" in bad.json()


def test_picture_page_shows_the_record_and_the_matches_with_votes(server, browser_page):
    metadata = {"misp_event_id": "7", "note": "<b>not markup</b>"}
    original = add(server, drawn(811, size=(1280, 800)), "bank-login.png", tags="brand:bank",
                   metadata=json.dumps(metadata))
    copy = add(server, variant(drawn(811, size=(1280, 800)), 0.8), "kit-copy.jpg")
    page = browser_page
    page.goto(f"{server.url}/#/picture/{original}")
    page.wait_for_selector("#picture-matches li.match")
    assert page.is_visible("#tab-picture") and not page.is_visible("#tab-search")
    assert page.text_content("#picture-name") == "bank-login.png"
    record = page.text_content("#picture-record")
    assert original in record and "brand:bank" in record and "1280 × 800" in record
    assert "<b>not markup</b>" in record and page.locator("#picture-record b").count() == 0  # text, not HTML
    image = page.locator("#picture-image img.thumb")
    image.evaluate("img => img.complete || new Promise(r => img.onload = r)")
    assert image.evaluate("img => img.naturalWidth") > 0
    [card] = page.locator("#picture-matches li.match").all()
    assert card.locator(".id").text_content() == copy
    assert card.locator(".badge.accepted").count() >= 1 and card.locator("tr.algo").count() >= 3
    card.locator("a.name").click()  # each match leads to its own page
    page.locator("#picture-name", has_text="kit-copy.jpg").wait_for()
    assert page.url.endswith(f"#/picture/{copy}")
    page.locator("#picture-matches li.match .id", has_text=original).wait_for()


def test_unknown_picture_says_so(server, browser_page):
    browser_page.goto(f"{server.url}/#/picture/{'ab' * 32}")
    browser_page.wait_for_selector("#message:not([hidden])")
    assert "no picture with id" in browser_page.text_content("#message")


@pytest.fixture
def browser_page(browser):
    with checked_page(browser, viewport={"width": 1280, "height": 900}) as page:
        yield page

"""The noise bank in the web UI, in a real headless Chromium against a real ``quaid serve``: a picture's
page marks and unmarks it, the review queue's "Noise" verdict marks the stored picture, and a search
answered as noise says so. Any JavaScript error fails the test.
"""

from __future__ import annotations

import pytest
from browser_support import checked_page
from drawing import drawn, variant
from serverproc import ServerProcess

from engine.review import ReviewQueue
from engine.store import EmbeddedRedis

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("ui-noise")) as proc:
        yield proc


@pytest.fixture
def page(browser):
    with checked_page(browser, viewport={"width": 1280, "height": 900}) as page:
        yield page


def add(server, data: bytes, name: str) -> dict:
    response = server.post("/api/v1/pictures", files={"file": (name, data)}, data={"name": name})
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_the_picture_page_marks_and_unmarks_noise_and_a_search_says_it(server, page):
    stored = add(server, drawn(801, size=(1280, 800)), "challenge.png")
    page.goto(server.url + f"/#/picture/{stored['id']}")
    button = page.locator("#picture-noise-button")
    page.locator("#picture-noise-button", has_text="Mark as noise").wait_for()
    button.click()
    page.locator("#picture-noise", has_text="Noise: marked as noise by an analyst").wait_for()
    assert server.get(f"/api/v1/pictures/{stored['id']}").json()["noise"]["reason"] == "marked"
    assert "Not noise" in button.text_content()

    page.goto(server.url + "/")
    page.set_input_files("#file", {"name": "copy.jpg", "mimeType": "image/jpeg",
                                   "buffer": variant(drawn(801, size=(1280, 800)), 0.8)})
    page.click("#search-button")
    page.wait_for_selector("#noise-note:not([hidden])")
    assert "matches a picture in the noise bank" in page.text_content("#noise-note")
    assert stored["id"][:16] in page.text_content("#noise-note")

    page.goto(server.url + f"/#/picture/{stored['id']}")
    page.locator("#picture-noise-button", has_text="Not noise").wait_for()
    page.click("#picture-noise-button")
    page.locator("#picture-noise-button", has_text="Mark as noise").wait_for()
    assert page.text_content("#picture-noise") == ""
    assert "noise" not in server.get(f"/api/v1/pictures/{stored['id']}").json()


def test_the_review_queue_noise_verdict_marks_the_stored_picture(server, page):
    stored = add(server, drawn(802), "parked.png")
    queue = ReviewQueue(EmbeddedRedis(server.home / "redis").client())
    match = {"id": stored["id"], "name": stored["name"], "distance": 0.31, "decision": "to-review",
             "algorithms": {"pdq": {"distance": 0.31, "decision": "maybe"}}}
    result = {"matches": [match]}
    (item,) = queue.record(variant(drawn(803), 0.6), "query.jpg", result)
    page.goto(server.url + "/#review")
    row = page.locator(f"li[data-item='{item}']")
    row.locator("button.noise").click()
    row.wait_for(state="detached")
    assert server.get(f"/api/v1/review/{item}").json()["verdict"] == "noise"
    assert server.get(f"/api/v1/pictures/{stored['id']}").json()["noise"]["reason"] == "review"

"""The web UI in a real headless Chromium (Debian's, driven by Playwright) against a real ``quaid serve``:
upload-and-search (file picker and drag-and-drop), add, clusters and a cluster's page, the graph, the review
queue, links from every card to the picture's page,
and the API-key form when keys are on. Any JavaScript error fails the test.
"""

from __future__ import annotations

import base64

import pytest
import requests
from browser_support import checked_page
from drawing import drawn, variant
from serverproc import ServerProcess

from engine.review import ReviewQueue
from engine.store import EmbeddedRedis

pytestmark = pytest.mark.browser

KEY = "ui-write-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("ui")) as proc:
        yield proc


@pytest.fixture
def page(browser):
    with checked_page(browser, viewport={"width": 1280, "height": 900}) as page:
        yield page


def add(server, data: bytes, name: str, headers: dict | None = None) -> dict:
    response = server.post("/api/v1/pictures", files={"file": (name, data)}, data={"name": name},
                           headers=headers or {})
    assert response.status_code in (200, 201), response.text
    return response.json()


def file_payload(name: str, data: bytes) -> dict:
    return {"name": name, "mimeType": "image/jpeg" if name.endswith(".jpg") else "image/png", "buffer": data}


def test_upload_and_search_shows_the_answer_thumbnails_and_votes(server, page):
    stored = add(server, drawn(701, size=(1280, 800)), "known-phish.png")
    page.goto(server.url + "/")
    page.set_input_files("#file", file_payload("suspect.jpg", variant(drawn(701, size=(1280, 800)), 0.8)))
    page.click("#search-button")
    page.wait_for_selector("#result:not([hidden])")
    assert page.text_content("#decision") == "accepted"
    first = page.locator("#matches li.match").first
    assert first.locator(".id").text_content() == stored["id"]
    assert "known-phish.png" in first.locator(".name").text_content()
    assert first.locator("tr.algo").count() >= 3
    assert "null" not in first.text_content() and "undefined" not in first.text_content()
    assert first.locator(".badge.yes").count() >= 1
    first.locator("img.thumb").evaluate("img => img.complete || new Promise(r => img.onload = r)")
    assert first.locator("img.thumb").evaluate("img => img.naturalWidth") > 0
    first.locator("a.thumb-link").click()  # each result opens the stored picture's page
    page.locator("#picture-name", has_text="known-phish.png").wait_for()
    assert page.url.endswith(f"#/picture/{stored['id']}")
    page.locator("#picture-record a.cluster-link").click()  # and its cluster's page
    page.locator(f"#cluster-members li[data-id='{stored['id']}']").wait_for()


def test_a_hash_only_reference_is_a_card_without_a_picture(server, page):
    """A partner's hashes stored without a picture: the search shows a placeholder, never a broken image."""
    data = drawn(720, size=(1280, 800))
    pdq = server.post("/api/v1/hash", files={"file": ("p.png", data)}).json()["hashes"]["pdq"]
    imported = server.post("/api/v1/hashes", json={"format": "lines", "list": f"pdq {pdq}"}).json()
    page.goto(server.url + "/")
    page.set_input_files("#file", file_payload("suspect.png", data))
    page.click("#search-button")
    page.wait_for_selector("#result:not([hidden])")
    card = page.locator("#matches li.match", has_text=imported["results"][0]["id"])
    assert card.locator(".no-picture").text_content() == "hashes only: no picture"
    assert card.locator("img").count() == 0 and card.locator(".badge.to-review").count() >= 1
    page.goto(server.url + f"/#/picture/{imported['results'][0]['id']}")
    page.locator("#picture-image .no-picture").wait_for()
    assert "partner's hashes only" in page.text_content("#picture-record")


def test_drop_a_picture_then_add_it(server, page):
    data = drawn(702)
    page.goto(server.url + "/")
    handle = page.evaluate_handle(
        """b64 => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                    const dt = new DataTransfer();
                    dt.items.add(new File([bytes], 'dropped.png', {type: 'image/png'})); return dt; }""",
        base64.b64encode(data).decode())
    page.dispatch_event("#drop", "drop", {"dataTransfer": handle})
    assert "dropped.png" in page.text_content("#file-name")
    page.click("#search-button")
    page.wait_for_selector("#result:not([hidden])")
    assert page.text_content("#decision") == "rejected"
    assert page.is_visible("#no-match")
    page.click("#add-button")
    page.wait_for_selector("#message.info")
    assert "Added" in page.text_content("#message")
    picture_id = page.text_content("#message").split(": ")[1].split(" ")[0]
    assert server.get(f"/api/v1/pictures/{picture_id}").json()["name"] == "dropped.png"


def test_clusters_cluster_page_and_graph(server, page):
    first = add(server, drawn(703), "cluster-a.png")
    copy = add(server, variant(drawn(703), 0.85), "cluster-a-copy.jpg")
    page.goto(server.url + "/#clusters")
    card = page.locator(f"#cluster-list li[data-cluster='{first['cluster']}']")
    card.wait_for()
    assert "2 picture(s)" in card.text_content()
    card.locator("a.name").click()  # the cluster's own page
    page.locator("#cluster-members li").nth(1).wait_for()
    assert page.url.endswith(f"#/cluster/{first['cluster']}") and page.is_hidden("#tab-clusters")
    names = page.locator("#cluster-members .name").all_text_contents()
    assert set(names) == {"cluster-a.png", "cluster-a-copy.jpg"}
    assert first["id"] in page.text_content("#cluster-size")  # the representative

    graph = server.get("/api/v1/graph").json()
    page.goto(server.url + "/#graph")
    page.wait_for_function("n => window.quaid && quaid.graph.nodes().length === n", arg=len(graph["nodes"]))
    assert page.evaluate("quaid.graph.edges().length") == len(graph["edges"])
    pair = page.evaluate("id => quaid.graph.getElementById(id).connectedEdges().map(e => e.data('decision'))",
                         copy["id"])
    assert "accepted" in pair  # the copy is joined to its original, coloured as accepted
    positions = page.evaluate("quaid.graph.nodes().map(n => [n.position('x'), n.position('y')].join())")
    assert len(set(positions)) == len(positions)  # the layout spread the nodes apart
    assert page.is_hidden("#graph-notice")  # every picture is drawn: nothing to page through


def test_graph_without_its_library_says_how_to_install_it(server, page):
    page.route("**/ui/vendor/cytoscape.min.js", lambda route: route.abort())
    page.goto(server.url + "/#graph")
    page.wait_for_selector("#message:not([hidden])")
    assert "scripts/install-ui-libraries.sh" in page.text_content("#message")


def test_review_queue_accept_and_reject(server, page):
    stored = [add(server, drawn(704 + i), f"review-{i}.png") for i in range(2)]
    queue = ReviewQueue(EmbeddedRedis(server.home / "redis").client())
    items = []
    for i, match in enumerate(stored):
        result = {"matches": [{"id": match["id"], "name": match["name"], "distance": 0.31,
                               "decision": "to-review",
                               "algorithms": {"pdq": {"distance": 0.31, "decision": "maybe"}}}]}
        items += queue.record(variant(drawn(704 + i), 0.6, quality=40), f"query-{i}.jpg", result)
    page.goto(server.url + "/#review")
    for item in items:
        page.locator(f"li[data-item='{item}']").wait_for()
    row = page.locator(f"li[data-item='{items[0]}']")
    assert "query-0.jpg" in row.text_content() and "review-0.png" in row.text_content()
    assert row.locator("img.thumb").count() == 2
    stored_link = row.locator(f"a[href='#/picture/{stored[0]['id']}']")  # the stored picture opens its page
    assert stored_link.count() == 2 and stored_link.first.locator("img.thumb").count() == 1
    row.locator("button.accept").click()
    row.wait_for(state="detached")
    page.locator(f"li[data-item='{items[1]}'] button.reject").click()
    page.locator(f"li[data-item='{items[1]}']").wait_for(state="detached")
    answer = server.get("/api/v1/review/labels").json()["labels"]
    labels = {(entry["match"], entry["same"]) for entry in answer}
    assert {(stored[0]["id"], True), (stored[1]["id"], False)} <= labels


def test_a_review_item_searched_by_hashes_shows_no_query_picture(server, page):
    stored = add(server, drawn(730, size=(1280, 800)), "hash-reviewed.png")
    pdq = server.post("/api/v1/hash", files={"file": ("p.png", drawn(730, size=(1280, 800)))}).json()
    found = server.post("/api/v1/search/hashes", json={"hashes": {"pdq": pdq["hashes"]["pdq"]}}).json()
    assert found["matches"][0]["id"] == stored["id"] and found["decision"] == "to-review"
    page.goto(server.url + "/#review")
    row = page.locator("li.review-item", has_text="hash-reviewed.png")
    row.wait_for()
    assert row.locator(".no-picture").text_content() == "searched by hashes: no picture"
    assert f"pdq={pdq['hashes']['pdq']}" in row.text_content()
    assert row.locator("img.thumb").count() == 1  # the stored picture only


def test_api_key_form_when_keys_are_on(tmp_path, page):
    with ServerProcess(tmp_path, {"QUAID_WRITE_KEYS": KEY}) as proc:
        add(proc, drawn(710), "keyed.png", headers={"Authorization": f"Bearer {KEY}"})
        page.goto(proc.url + "/#clusters")
        page.wait_for_selector("#key-form:not([hidden])")
        page.wait_for_selector("#message:not([hidden])")
        assert "401" in page.text_content("#message")
        page.fill("#api-key", KEY)
        page.click("#key-form button")
        page.locator("#cluster-list li").first.wait_for()
        assert page.locator("#cluster-list li").count() == 1
        assert requests.get(proc.url + "/api/v1/clusters", timeout=10).status_code == 401
        page.locator("#cluster-list a.name").click()  # the cluster page and the graph use the key too
        thumb = page.locator("#cluster-members li.picture-card img.thumb")
        thumb.evaluate("img => (img.complete && img.src) || new Promise(r => img.onload = r)")
        assert thumb.evaluate("img => img.naturalWidth") > 0
        page.goto(proc.url + "/#graph")
        page.wait_for_function("() => window.quaid && quaid.graph.nodes().length === 1")


def test_the_review_queue_and_the_picture_page_draw_what_differs(server, page):
    from tests.test_hash_search import png
    from tests.test_orb import site_page
    from tests.test_same_template import sibling_page

    stored = add(server, png(site_page(6)), "bank-page.png")
    found = server.post("/api/v1/search", files={"file": ("sibling.png", png(sibling_page(6, 1)))}).json()
    assert any(m["decision"] == "to-review" for m in found["matches"]), found
    page.goto(server.url + "/#review")
    row = page.locator("li.review-item", has_text="sibling.png")
    row.locator("img.diff-image").wait_for()  # drawn from the features the queue kept of the query
    assert "Red: rewritten content" in row.locator("figure.diff").text_content()
    copy = add(server, png(site_page(6, heading="Please confirm your card details")), "bank-copy.png")
    page.goto(server.url + f"/#/picture/{stored['id']}")
    card = page.locator(f"#picture-matches li[data-id='{copy['id']}']")
    card.locator("button.show-diff").click()
    card.locator("img.diff-image").wait_for()
    assert card.locator("button.show-diff").count() == 0
    page.goto(server.url + "/#search")  # a searched picture against one of its matches (POST, not stored)
    suspect = png(site_page(6, heading="Verify your account"))
    page.set_input_files("#file", file_payload("suspect.png", suspect))
    page.click("#search-button")
    first = page.locator("#matches li.match").first
    first.locator("button.show-diff").click()
    first.locator("img.diff-image").wait_for()

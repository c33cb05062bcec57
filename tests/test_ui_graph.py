"""The graph view and the cluster page in a real headless Chromium against a real ``quaid serve`` whose
store holds 2000 pictures: the graph draws one capped page (Cytoscape.js, served by quaid itself under
its Content-Security-Policy), hovering a node shows its name and thumbnail, a click opens the picture
page, and the picture's cluster link opens the cluster page, whose cards open their pictures. Any
JavaScript error or CSP violation fails the test.

The store is filled through the engine in this process (the same Redis as the server's; the server
picks the additions up from the store's change stream), which is far quicker than 2000 uploads.
"""

from __future__ import annotations

import pytest
from browser_support import checked_page
from drawing import drawn, variant
from serverproc import ServerProcess

from engine.config import load_settings
from engine.core import Quaid

pytestmark = pytest.mark.browser

STORE = 2000  # pictures
FAMILIES = 12  # originals stored with two modified copies each: clusters of 3
BIG_FAMILY = 70  # one cluster larger than a cluster page's first page (60)
SIZE = (160, 120)  # pixels: small pictures add in tens of milliseconds
FAMILY_SIZE = (480, 320)  # pixels: large enough for every copy to be accepted
CSP_WATCH = """window.__csp = []; document.addEventListener("securitypolicyviolation",
                 (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));"""


def fill(home) -> dict:
    """Add STORE pictures: FAMILIES clusters of 3, one of BIG_FAMILY copies, singletons for the rest."""
    names: dict[str, str] = {}
    with Quaid.open(load_settings(home=home)) as quaid:
        def add(data: bytes, name: str) -> None:
            names[quaid.add(data, name=name).id] = name

        big = drawn(20_000, size=(640, 480))
        for i in range(BIG_FAMILY):
            add(variant(big, 0.3 + 0.004 * i, quality=70 + i % 25), f"big-{i}.jpg")
        for f in range(FAMILIES):
            original = drawn(21_000 + f, size=FAMILY_SIZE)
            add(original, f"family-{f}.png")
            add(variant(original, 0.9, quality=90), f"family-{f}-copy.jpg")
            add(variant(original, 0.8, quality=85), f"family-{f}-small.jpg")
        seed = 30_000
        while len(names) < STORE:
            add(drawn(seed, size=SIZE), f"single-{seed}.png")
            seed += 1
    return names


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("ui-graph")) as proc:
        proc.names = fill(proc.home)
        yield proc


@pytest.fixture
def page(browser):
    with checked_page(browser, viewport={"width": 1400, "height": 1000}) as page:
        page.add_init_script(CSP_WATCH)
        yield page
        assert page.evaluate("window.__csp") == []


def node_point(page, node_id: str) -> tuple[float, float]:
    """Where the node is drawn on the screen (Cytoscape draws on a canvas)."""
    return page.evaluate("""id => { const node = quaid.graph.getElementById(id), p = node.renderedPosition();
                                    const box = document.getElementById('graph').getBoundingClientRect();
                                    return [box.left + p.x, box.top + p.y]; }""", node_id)


def families(server) -> list[dict[str, str]]:
    """The clusters of three pictures (an original and its copies): id -> name of each member."""
    clusters = server.get("/api/v1/clusters").json()["clusters"]
    found = []
    for c in (c for c in clusters if c["size"] == 3):
        members = server.get(f"/api/v1/clusters/{c['cluster']}").json()["members"]
        found.append({m["id"]: m["name"] for m in members})
    return found


def test_the_store_holds_2000_pictures(server):
    assert server.get("/status").json()["stats"]["pictures"] == STORE
    clusters = server.get("/api/v1/clusters").json()["clusters"]
    assert clusters[0]["size"] == BIG_FAMILY and sum(c["size"] for c in clusters) == STORE
    assert len(families(server)) >= FAMILIES - 2  # the copies of most originals are accepted


def test_graph_page_route_caps_whole_clusters(server):
    first = server.get("/api/v1/graph", params={"limit": 100}).json()
    assert first["pictures"] == STORE and first["offset"] == 0
    drawn_clusters = {n["cluster"] for n in first["nodes"]}
    assert len(first["nodes"]) <= 100 and len(drawn_clusters) == first["shown_clusters"]
    sizes = [c["size"] for c in server.get("/api/v1/clusters").json()["clusters"]]
    assert len(first["nodes"]) == sum(sizes[: first["shown_clusters"]])  # whole clusters only
    ids = {n["id"] for n in first["nodes"]}
    assert first["edges"] and all(e["source"] in ids and e["target"] in ids for e in first["edges"])
    second = server.get("/api/v1/graph", params={"offset": first["next"], "limit": 100}).json()
    assert not ids & {n["id"] for n in second["nodes"]}
    cut = server.get("/api/v1/graph", params={"limit": 10}).json()
    assert len(cut["nodes"]) == 10 and cut["cut"] == [cut["nodes"][0]["cluster"]] and cut["next"] == 1
    assert server.get("/api/v1/graph", params={"limit": 0}).status_code == 400


def test_graph_hover_shows_name_and_thumbnail_and_a_click_opens_the_picture(server, page):
    page.goto(server.url + "/#graph")
    page.wait_for_function("() => window.quaid && quaid.graph.nodes().length > 0")
    shown = page.evaluate("quaid.graph.nodes().length")
    assert 0 < shown <= 300
    notice = page.text_content("#graph-notice")
    assert f"of {STORE} pictures" in notice and page.is_visible("#graph-next")
    edges = page.evaluate("quaid.graph.edges().map(e => e.data('decision'))")
    assert "accepted" in edges  # the clusters' copies are joined

    family, name = next(iter(families(server)[1].items()))
    page.evaluate("id => quaid.graph.center(quaid.graph.getElementById(id))", family)
    x, y = node_point(page, family)
    page.mouse.move(x, y)
    tip = page.locator("#graph-tip")
    tip.wait_for(state="visible")
    assert tip.locator(".name").text_content() == name
    image = tip.locator("img.thumb")
    image.wait_for()
    image.evaluate("img => img.complete || new Promise(r => img.onload = r)")
    assert image.evaluate("img => img.naturalWidth") > 0

    page.mouse.click(x, y)
    page.locator("#picture-name", has_text=name).wait_for()
    assert page.url.endswith(f"#/picture/{family}") and page.is_hidden("#graph-tip")

    page.goto(server.url + "/#graph")  # the next page: smaller clusters, other pictures
    page.wait_for_function("() => window.quaid && quaid.graph.nodes().length > 0")
    first_ids = set(page.evaluate("quaid.graph.nodes().map(n => n.id())"))
    page.click("#graph-next")
    page.wait_for_function("ids => quaid.graph.nodes().length"
                           " && !quaid.graph.nodes().some(n => ids.includes(n.id()))",
                           arg=sorted(first_ids))
    assert page.is_visible("#graph-prev")


def test_cluster_page_from_the_picture_page_and_back_to_a_picture(server, page):
    family = families(server)[0]
    original, last = list(family)[0], list(family.values())[-1]
    page.goto(f"{server.url}/#/picture/{original}")
    link = page.locator("#picture-record a.cluster-link")
    link.wait_for()
    link.click()
    page.locator("#cluster-members li.picture-card").nth(2).wait_for()
    assert page.is_visible("#tab-cluster") and page.is_hidden("#cluster-next")
    cards = page.locator("#cluster-members li.picture-card")
    assert {cards.nth(i).get_attribute("data-id") for i in range(cards.count())} == set(family)
    copy = cards.filter(has_text=last)
    copy.locator("img.thumb").evaluate("img => img.complete || new Promise(r => img.onload = r)")
    assert copy.locator("img.thumb").evaluate("img => img.naturalWidth") > 0
    copy.locator("a.thumb-link").click()
    page.locator("#picture-name", has_text=last).wait_for()


def test_a_large_cluster_page_loads_more_and_the_clusters_view_links_to_it(server, page):
    page.goto(server.url + "/#clusters")
    largest = page.locator("#cluster-list li").first
    largest.locator("a.name").click()
    page.locator("#cluster-members li.picture-card").nth(59).wait_for()
    assert page.locator("#cluster-members li.picture-card").count() == 60
    assert f"60 of {BIG_FAMILY} shown" in page.text_content("#cluster-shown")
    page.click("#cluster-next")
    page.locator("#cluster-members li.picture-card").nth(BIG_FAMILY - 1).wait_for()
    ids = page.eval_on_selector_all("#cluster-members li.picture-card", "cs => cs.map(c => c.dataset.id)")
    assert len(set(ids)) == BIG_FAMILY and page.is_hidden("#cluster-next")
    assert {server.names[i] for i in ids} == {f"big-{i}.jpg" for i in range(BIG_FAMILY)}

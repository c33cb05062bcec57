"""A hostile page in a real Chromium (Debian's, driven by Playwright) against a real ``quaid serve`` with
no key (the loopback default): the attacks a phishing page open in the analyst's browser can make.

* From another loopback origin (``http://127.0.0.2:<port>``, a real HTTP server): a multipart form
  post adding a picture, a form post setting a review verdict, ``no-cors`` fetches (one trying to
  add the custom header, which the browser drops), and a CORS read of the export.
* DNS rebinding: Chromium resolves ``rebind.test`` to 127.0.0.1 (``--host-resolver-rules``); the
  attacker's page is served under that name first (a Playwright route stands for the attacker's
  server before the rebind), then its same-origin requests, custom header included, reach quaid.

Each test checks that the requests did reach quaid (its log shows the refusals) and that nothing
was stored, judged or read.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from browser_support import launched
from drawing import drawn
from serverproc import ServerProcess

from engine.review import ReviewQueue
from engine.store import EmbeddedRedis

pytestmark = pytest.mark.browser

ATTACK_ARGS = [
        "--host-resolver-rules=MAP rebind.test 127.0.0.1",
        # Recent Chromium blocks a page it got from "public" space (the route below) from calling
        # loopback (Local Network Access); Firefox, Safari and older Chromium do not. Off, so that
        # what is tested is quaid's own refusal.
        "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
        "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults"]

# The attack, as the page's script: every request is tried, its outcome written to window.outcome.
ATTACK = """
<!doctype html><meta charset="utf-8"><title>attack</title><body>
<iframe name="sink"></iframe>
<script>
const QUAID = %(quaid)s, ITEM = %(item)s;
const bytes = Uint8Array.from(atob(%(png)s), c => c.charCodeAt(0));
const outcome = {};
async function attempt(name, run) {
  try { outcome[name] = await run(); } catch (e) { outcome[name] = "blocked: " + e; }
}
function post(action, fields, file) {
  const form = document.createElement("form");
  form.method = "POST"; form.enctype = "multipart/form-data"; form.action = action; form.target = "sink";
  for (const [k, v] of Object.entries(fields)) {
    const input = document.createElement("input"); input.name = k; input.value = v; form.appendChild(input);
  }
  if (file) {
    const input = document.createElement("input"); input.type = "file"; input.name = "file";
    const dt = new DataTransfer(); dt.items.add(new File([bytes], "evil.png", {type: "image/png"}));
    input.files = dt.files; form.appendChild(input);
  }
  document.body.appendChild(form);
  const sink = document.querySelector("iframe");
  return new Promise(done => { sink.onload = () => done("sent"); form.submit(); });
}
function formData() {
  const data = new FormData(); data.append("file", new File([bytes], "evil.png", {type: "image/png"}));
  data.append("name", "planted-by-page"); return data;
}
(async () => {
  await attempt("form-add", () => post(QUAID + "/api/v1/pictures", {name: "planted-by-form"}, true));
  await attempt("form-verdict", () => post(QUAID + "/api/v1/review/" + ITEM, {verdict: "accepted"}, false));
  await attempt("no-cors-add", async () => (await fetch(QUAID + "/api/v1/pictures",
      {method: "POST", mode: "no-cors", body: formData()})).type);
  await attempt("no-cors-add-header", async () => (await fetch(QUAID + "/api/v1/pictures",
      {method: "POST", mode: "no-cors", body: formData(), headers: {"X-Quaid-Request": "1"}})).type);
  await attempt("read-export", async () => (await fetch(QUAID + "/api/v1/export")).text());
  await attempt("same-origin-add", async () => (await fetch(QUAID + "/api/v1/pictures",
      {method: "POST", body: formData(), headers: {"X-Quaid-Request": "1"}})).status);
  window.outcome = outcome;
})();
</script>
"""


@pytest.fixture(scope="module")
def quaid(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("attacked")) as proc:
        yield proc


@pytest.fixture(scope="module")
def browser():
    with launched(*ATTACK_ARGS) as instance:
        yield instance


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


class AttackerSite:
    """A real web server on another loopback address, serving one page."""

    def __init__(self, html: str) -> None:
        body = html.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.url = f"http://127.0.0.2:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def plant_review_item(quaid: ServerProcess, seed: int) -> str:
    """A to-review match waiting for a verdict, as a search would have queued it."""
    added = quaid.post("/api/v1/pictures", files={"file": ("victim.png", drawn(seed))}).json()
    queue = ReviewQueue(EmbeddedRedis(quaid.home / "redis").client())
    match = {"id": added["id"], "name": "victim.png", "distance": 0.3, "decision": "to-review"}
    result = {"matches": [match]}
    return queue.record(drawn(seed + 1), "query.png", result)[0]


def attack_page(quaid_url: str, item: str) -> str:
    return ATTACK % {"quaid": json.dumps(quaid_url), "item": json.dumps(item),
                     "png": json.dumps(base64.b64encode(drawn(903)).decode())}


def state(quaid: ServerProcess) -> dict:
    export = quaid.get("/api/v1/export").json()
    return {"names": sorted(p["name"] for p in export["pictures"]),
            "reviewed": quaid.get("/api/v1/review", params={"status": "done"}).json()["total"]}


def run_attack(page, url: str) -> dict:
    page.goto(url)
    page.wait_for_function("window.outcome !== undefined", timeout=60_000)
    return page.evaluate("window.outcome")


def test_a_page_from_another_loopback_origin_changes_and_reads_nothing(quaid, page):
    item = plant_review_item(quaid, 910)
    before = state(quaid)
    site = AttackerSite(attack_page(quaid.url, item))
    try:
        outcome = run_attack(page, site.url)
    finally:
        site.close()
    assert state(quaid) == before, outcome
    assert "victim.png" not in str(outcome.get("read-export"))
    assert str(outcome["read-export"]).startswith("blocked")
    log = quaid.log()
    assert log.count("refused POST /api/v1/pictures") >= 3  # the form and both no-cors fetches arrived
    assert f"refused POST /api/v1/review/{item}" in log


def test_a_rebinding_page_under_its_own_name_changes_and_reads_nothing(quaid, page):
    item = plant_review_item(quaid, 920)
    before = state(quaid)
    port = quaid.url.rsplit(":", 1)[1]
    origin = f"http://rebind.test:{port}"
    # Before the rebind, the attacker's own server answered for rebind.test: this route stands in.
    page.route(f"{origin}/attack.html", lambda route: route.fulfill(
        status=200, content_type="text/html", body=attack_page(origin, item)))
    outcome = run_attack(page, f"{origin}/attack.html")
    assert state(quaid) == before, outcome
    assert outcome["same-origin-add"] == 421  # same origin for the browser: only the Host check stops it
    assert "victim.png" not in str(outcome["read-export"]) and "public_hosts" in str(outcome["read-export"])
    assert "refused GET /api/v1/export" in quaid.log() and "'rebind.test:" in quaid.log()


def test_a_rebinding_host_header_is_refused_by_the_real_server(quaid):
    plant_review_item(quaid, 930)
    for host in ("rebind.attacker.example", f"rebind.attacker.example:{quaid.url.rsplit(':', 1)[1]}"):
        read = requests.get(quaid.url + "/api/v1/export", headers={"Host": host}, timeout=30)
        assert read.status_code == 421 and "victim.png" not in read.text
        assert read.json()["error"]
        added = quaid.post("/api/v1/pictures", files={"file": ("x.png", drawn(904))}, headers={"Host": host})
        assert added.status_code == 421
    assert "x.png" not in state(quaid)["names"]


def test_hostile_names_and_tags_render_as_text_in_the_ui(quaid, page):
    """Stored XSS: a picture named and tagged with markup, shown in the cluster view and the graph."""
    payload = "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>"
    added = quaid.post("/api/v1/pictures", files={"file": ("x.png", drawn(940))},
                       data={"name": payload, "tags": ["<b onmouseover=window.pwned=3>t</b>"]}).json()
    page.goto(quaid.url + "/#clusters")
    card = page.locator(f"#cluster-list li[data-cluster='{added['cluster']}']")
    card.locator("a.name").click()  # the cluster's page
    page.locator("#cluster-members li").first.wait_for()
    assert payload in page.text_content("#cluster-members")
    page.goto(quaid.url + "/#graph")
    page.wait_for_function("id => window.quaid && quaid.graph.getElementById(id).length", arg=added["id"])
    x, y = page.evaluate("""id => { const p = quaid.graph.getElementById(id).renderedPosition();
                                    const box = document.getElementById('graph').getBoundingClientRect();
                                    return [box.left + p.x, box.top + p.y]; }""", added["id"])
    page.mouse.move(x, y)  # the hover card shows the name
    page.locator("#graph-tip .name").wait_for()
    assert page.text_content("#graph-tip .name") == payload
    assert page.evaluate("window.pwned") is None
    assert page.locator("#cluster-members img[src='x'], script:has-text('pwned')").count() == 0

"""Every endpoint of a real ``quaid serve`` answers as its OpenAPI document says, errors included.

The document is fetched from the server and validated (openapi-spec-validator); each answer,
status and body, is validated against it with jsonschema (:mod:`openapi_contract`). A final
check compares the operations exercised with the Flask url_map, so a new route without a
request here fails.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
import redis
import requests
from drawing import drawn, variant
from openapi_contract import Contract
from serverproc import CLIENT_HEADER, ServerProcess

from engine.config import Settings
from engine.service.app import create_app
from engine.store import EmbeddedRedis
from tests.test_orb import site_page
from tests.test_same_template import sibling_page

READ, WRITE = "contract-read-key-0123", "contract-write-key-4567"
UPLOAD_LIMIT = 1_000_000  # bytes; small so the 413 request sends little
NO_ID = "f" * 64
NO_ITEM = "0" * 32


def bearer(key: str, write_header: bool = False) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    return {**headers, CLIENT_HEADER: "1"} if write_header else headers


def png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"QUAID_READ_KEYS": READ, "QUAID_WRITE_KEYS": WRITE, "QUAID_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}
    with ServerProcess(tmp_path_factory.mktemp("contract"), env) as proc:
        yield proc


@pytest.fixture(scope="module")
def contract(server) -> Contract:
    answer = server.get("/api/v1/openapi.json")
    contract = Contract(answer.json())
    contract.check(answer, "/api/v1/openapi.json", "get")
    return contract


class Caller:
    """Requests to the server, each checked against the document under its documented path."""

    def __init__(self, server: ServerProcess, contract: Contract) -> None:
        self.server, self.contract = server, contract

    def __call__(self, method: str, documented: str, path: str, key: str | None = WRITE,
                 write_header: bool = True, **kwargs):
        headers = bearer(key, write_header) if key else ({CLIENT_HEADER: "1"} if write_header else {})
        headers.update(kwargs.pop("headers", {}))
        response = requests.request(method, self.server.url + path, headers=headers, timeout=60, **kwargs)
        return self.contract.check(response, documented, method.lower())


def served_operations() -> set[tuple[str, str]]:
    """(path, method) of every route of the app, named as the document names them."""
    never_connected = redis.Redis.from_url("redis://127.0.0.1:1/0")  # url_map only: no request is served

    class Facade:
        records = type("Records", (), {"redis": never_connected})()

    app = create_app(Settings(), Facade())
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("ui."):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}").replace("{pid}", "{id}").replace("{cid}", "{id}")
        served |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return served


def wait_done(call: Caller, job: str) -> dict:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        state = call("GET", "/api/v1/jobs/{job}", f"/api/v1/jobs/{job}", key=READ).json()
        if state["status"] in ("done", "failed"):
            return state
        time.sleep(0.3)
    raise AssertionError(f"job {job} not done in time")


def test_every_endpoint_and_its_errors_answer_as_documented(server, contract):
    call = Caller(server, contract)
    for path in ("/status/live", "/status"):
        call("GET", path, path, key=None, write_header=False)

    # pictures: add (201, then 200), and the refusals of a write
    page, other = png(site_page(5)), drawn(901)
    files = {"file": ("page.png", page)}
    added = call("POST", "/api/v1/pictures", "/api/v1/pictures", files=files,
                 data={"name": "page", "tags": ["a", "b"], "metadata": '{"event": 7}'})
    assert added.status_code == 201
    pid, cluster = added.json()["id"], added.json()["cluster"]
    assert call("POST", "/api/v1/pictures", "/api/v1/pictures", files=files).status_code == 200
    assert call("POST", "/api/v1/pictures", "/api/v1/pictures", files={"file": ("o.png", other)}).ok
    for key, status in ((None, 401), (READ, 403)):
        refused = call("POST", "/api/v1/pictures", "/api/v1/pictures", files=files, key=key)
        assert refused.status_code == status
    no_header = call("POST", "/api/v1/pictures", "/api/v1/pictures", files=files, write_header=False)
    assert no_header.status_code == 403 and CLIENT_HEADER in no_header.json()["error"]
    wrong_host = call("POST", "/api/v1/pictures", "/api/v1/pictures", files=files,
                      headers={"Host": "quaid.attacker.example"})
    assert wrong_host.status_code == 421
    for status, kwargs in ((400, {"files": {"name": (None, "no file part")}}),
                           (415, {"files": {"file": ("x.png", b"not a picture at all")}}),
                           (415, {"json": {"file": "x"}}),
                           (413, {"files": {"file": ("big.png", b"\0" * (UPLOAD_LIMIT + 100_000))}})):
        assert call("POST", "/api/v1/pictures", "/api/v1/pictures", **kwargs).status_code == status

    # one picture
    one = "/api/v1/pictures/{id}"
    record = call("GET", one, f"/api/v1/pictures/{pid}", key=READ).json()
    assert record["cluster"] == cluster and isinstance(record["added"], str)
    for bad, status in (("not-an-id", 400), (NO_ID, 404)):
        assert call("GET", one, f"/api/v1/pictures/{bad}", key=READ).status_code == status
    assert call("PATCH", one, f"/api/v1/pictures/{pid}", json={"tags": ["c"]}).json()["tags"] == ["c"]
    for body, status in (({"colour": "red"}, 400), ([1, 2], 400)):
        assert call("PATCH", one, f"/api/v1/pictures/{pid}", json=body).status_code == status
    assert call("PATCH", one, f"/api/v1/pictures/{NO_ID}", json={"tags": []}).status_code == 404
    image = "/api/v1/pictures/{id}/image"
    assert call("GET", image, f"/api/v1/pictures/{pid}/image", key=READ).status_code == 200
    assert call("GET", image, f"/api/v1/pictures/{NO_ID}/image", key=READ).status_code == 404
    assert call("GET", image, "/api/v1/pictures/zz/image", key=READ).status_code == 400
    matches = "/api/v1/pictures/{id}/matches"
    assert call("GET", matches, f"/api/v1/pictures/{pid}/matches", key=READ).status_code == 200
    assert call("GET", matches, f"/api/v1/pictures/{pid}/matches?top=0", key=READ).status_code == 400
    assert call("GET", matches, f"/api/v1/pictures/{NO_ID}/matches", key=READ).status_code == 404

    # search: a sibling page of the same site is to-review (with its reason) and queued for review
    sibling = {"file": ("sibling.png", png(sibling_page(5, 1)))}
    found = call("POST", "/api/v1/search", "/api/v1/search", key=READ, files=sibling,
                 data={"all": "1"}).json()
    assert found["matches"][0]["id"] == pid and found["matches"][0]["decision"] == "to-review"
    assert call("POST", "/api/v1/search", "/api/v1/search", key=READ, files=sibling,
                data={"top": "zero"}).status_code == 400
    assert call("POST", "/api/v1/search", "/api/v1/search", key=READ,
                files={"file": ("x", b"GIF89a broken")}).status_code == 415

    # hashes as partners' tools write them: nothing stored
    hashed = call("POST", "/api/v1/hash", "/api/v1/hash", key=READ, files=sibling).json()
    assert hashed["file"] == "sibling.png" and len(hashed["hashes"]["goldberg"]) == 648
    assert call("POST", "/api/v1/hash", "/api/v1/hash", key=READ,
                files={"file": ("x", b"GIF89a broken")}).status_code == 415
    assert call("POST", "/api/v1/hash", "/api/v1/hash", key=READ,
                files={"other": ("a.png", b"x")}).status_code == 400  # no file part

    # search by a partner's hashes (no picture): at best to-review; a hash list as hash-only references
    by_hash = "/api/v1/search/hashes"
    mine = call("POST", "/api/v1/hash", "/api/v1/hash", key=READ, files=files).json()["hashes"]
    found = call("POST", by_hash, by_hash, key=READ,
                 json={"hashes": {"pdq": mine["pdq"]}, "all": True}).json()
    assert found["matches"][0]["id"] == pid and found["matches"][0]["reason"] == "hashes-only"
    assert call("POST", by_hash, by_hash, key=READ, json={"hashes": {"pdq": "z"}}).status_code == 400
    imported = call("POST", "/api/v1/hashes", "/api/v1/hashes",
                    json={"format": "lines", "list": f"phash {mine['phash']}\nbad line"}).json()
    assert (imported["added"], imported["failed"]) == (1, 1)
    assert call("POST", "/api/v1/hashes", "/api/v1/hashes", key=READ,
                json={"format": "lines", "list": ""}).status_code == 403
    refused = call("POST", "/api/v1/hashes", "/api/v1/hashes", json={"format": "x", "list": ""})
    assert refused.status_code == 400
    hash_only = call("GET", one, f"/api/v1/pictures/{imported['results'][0]['id']}", key=READ).json()
    assert hash_only["hash_only"] is True

    # batch jobs: an add job with one bad file, a search job, their refusals
    jobs = "/api/v1/jobs"
    batch = [("file", ("v.jpg", variant(other))), ("file", ("bad.png", b"nope")),
             ("file", ("n.png", drawn(902)))]
    queued = call("POST", jobs, jobs, files=batch, data={"action": "add"})
    assert queued.status_code == 202
    done = wait_done(call, queued.json()["job"])
    assert [r.get("status") for r in done["results"]][1] == "error"
    searched = call("POST", jobs, jobs, key=READ, files=[("file", ("s.png", page))],
                    data={"action": "search"})
    assert wait_done(call, searched.json()["job"])["results"][0]["matches"][0]["id"] == pid
    assert call("POST", jobs, jobs, key=READ, files=batch, data={"action": "add"}).status_code == 403
    assert call("POST", jobs, jobs, files=batch, data={"action": "shred"}).status_code == 400
    assert call("POST", jobs, jobs, data={"action": "add"}, files={"other": ("a", b"")}).status_code == 400
    assert call("GET", "/api/v1/jobs/{job}", f"/api/v1/jobs/{NO_ITEM}", key=READ).status_code == 404

    # clusters and export
    assert call("GET", "/api/v1/clusters", "/api/v1/clusters", key=READ).json()["clusters"]
    detail = call("GET", "/api/v1/clusters/{id}", f"/api/v1/clusters/{cluster}", key=READ).json()
    assert pid in [m["id"] for m in detail["members"]]
    for bad, status in (("abc", 400), ("99999999", 404), (f"{cluster}?limit=0", 400)):
        assert call("GET", "/api/v1/clusters/{id}", f"/api/v1/clusters/{bad}", key=READ).status_code == status
    copy = call("POST", "/api/v1/pictures", "/api/v1/pictures", data={"name": "page-copy"},
                files={"file": ("copy.jpg", variant(page, 1.0, quality=95))}).json()
    assert copy["cluster"] == cluster  # a re-encoded copy joins the page's cluster, after it
    pair = f"/api/v1/clusters/{cluster}"
    paged = call("GET", "/api/v1/clusters/{id}", pair + "?offset=1&limit=1", key=READ).json()
    assert paged["size"] == 2 and paged["offset"] == 1 and [m["id"] for m in paged["members"]] == [copy["id"]]
    first_page = call("GET", "/api/v1/clusters/{id}", pair + "?limit=1", key=READ).json()
    assert [m["id"] for m in first_page["members"]] == [pid]

    # the copy matched the page when it was added: a match event
    events = call("GET", "/api/v1/events", "/api/v1/events?after=0", key=READ).json()
    assert any(e["id"] == copy["id"] and e["matches"][0]["id"] == pid for e in events["events"])
    assert call("GET", "/api/v1/events", "/api/v1/events?after=soon", key=READ).status_code == 400

    # the visual difference of two stored pictures, of an upload and a stored picture
    compare = "/api/v1/compare"
    drawn_pair = call("GET", compare, f"{compare}?a={pid}&b={copy['id']}", key=READ)
    assert drawn_pair.status_code == 200 and drawn_pair.headers["X-Quaid-Aligned"] == "true"
    for query, status in ((f"a={pid}&b={NO_ID}", 404), (f"a={pid}&b=zz", 400), (f"a={pid}", 400),
                          (f"a={pid}&b={hash_only['id']}", 422)):
        assert call("GET", compare, f"{compare}?{query}", key=READ).status_code == status
    assert call("POST", compare, compare, key=READ, files=sibling, data={"b": pid}).status_code == 200
    assert call("POST", compare, compare, key=READ, files={"file": ("x", b"GIF89a broken")},
                data={"b": pid}).status_code == 415
    graph = call("GET", "/api/v1/graph", "/api/v1/graph?limit=1", key=READ).json()
    stored = call("GET", "/status", "/status", key=None, write_header=False).json()["stats"]["pictures"]
    assert len(graph["nodes"]) == 1 and graph["next"] == 1 and graph["pictures"] == stored
    assert call("GET", "/api/v1/graph", "/api/v1/graph?offset=-1", key=READ).status_code == 400
    for query, status in (("", 200), ("?format=graph", 200), ("?format=xml", 400)):
        assert call("GET", "/api/v1/export", f"/api/v1/export{query}", key=READ).status_code == status

    # review: the sibling's item, its thumbnail, a verdict, the labels
    pending = call("GET", "/api/v1/review", "/api/v1/review", key=READ).json()
    item = next(i["item"] for i in pending["items"] if i["match"] == pid)
    assert call("GET", "/api/v1/review", "/api/v1/review?status=later", key=READ).status_code == 400
    one_item = "/api/v1/review/{item}"
    assert call("GET", one_item, f"/api/v1/review/{item}", key=READ).json()["verdict"] is None
    assert call("GET", one_item, f"/api/v1/review/{NO_ITEM}", key=READ).status_code == 404
    thumb = "/api/v1/review/{item}/image"
    assert call("GET", thumb, f"/api/v1/review/{item}/image", key=READ).status_code == 200
    assert call("GET", thumb, f"/api/v1/review/{NO_ITEM}/image", key=READ).status_code == 404
    item_png = "/api/v1/review/{item}/compare"
    assert call("GET", item_png, f"/api/v1/review/{item}/compare", key=READ).status_code == 200
    assert call("GET", item_png, f"/api/v1/review/{NO_ITEM}/compare", key=READ).status_code == 404
    judged = call("POST", one_item, f"/api/v1/review/{item}", json={"verdict": "rejected"},
                  write_header=False)  # a JSON body needs no header
    assert judged.json()["verdict"] == "rejected" and "reviewed" in judged.json()
    assert call("POST", one_item, f"/api/v1/review/{item}", json={"verdict": "maybe"}).status_code == 400
    unknown = call("POST", one_item, f"/api/v1/review/{NO_ITEM}", json={"verdict": "accepted"})
    assert unknown.status_code == 404
    labels = call("GET", "/api/v1/review/labels", "/api/v1/review/labels", key=READ).json()["labels"]
    assert labels[0]["same"] is False
    assert call("GET", "/api/v1/review", "/api/v1/review?status=done", key=READ).json()["total"] == 1

    # brands: a baseline added with its brand and domain, the brand's own domains, the verdict of a
    # search naming the query's domain (engine.brands), and the refusals
    brands, one_brand = "/api/v1/brands", "/api/v1/brands/{name}"
    baseline = png(site_page(7))
    added = call("POST", "/api/v1/pictures", "/api/v1/pictures", files={"file": ("acme.png", baseline)},
                 data={"brand": "Acme", "domain": "https://www.acme.example/login"}).json()
    assert call("GET", one, f"/api/v1/pictures/{added['id']}", key=READ).json()["metadata"] == {
        "brand": "Acme", "domain": "https://www.acme.example/login"}
    bad_domain = call("POST", "/api/v1/pictures", "/api/v1/pictures", files={"file": ("b.png", drawn(904))},
                      data={"brand": "Acme", "domain": "http://"})
    assert bad_domain.status_code == 400
    set_brand = call("PUT", one_brand, "/api/v1/brands/Acme", json={"domains": ["https://acme-bank.example/"]},
                     write_header=False)
    assert set_brand.json() == {"name": "Acme", "domains": ["acme-bank.example"]}
    for body in ({"domains": []}, {"domains": ["a b"]}, {"domain": "x.example"}):
        assert call("PUT", one_brand, "/api/v1/brands/Acme", json=body).status_code == 400
    read_only = call("PUT", one_brand, "/api/v1/brands/Acme", key=READ, json={"domains": ["x.test"]})
    assert read_only.status_code == 403
    query = {"file": ("q.png", baseline)}
    phish = call("POST", "/api/v1/search", "/api/v1/search", key=READ, files=query,
                 data={"domain": "acme.example.evil.test"}).json()
    assert phish["domains"] == ["evil.test"] and phish["verdict"] == "phishing-suspected"
    assert phish["brand"]["match"] == added["id"]
    assert phish["matches"][0]["brand"] == {"name": "Acme", "domains": ["acme-bank.example", "acme.example"]}
    legit = call("POST", "/api/v1/search", "/api/v1/search?domain=login.acme-bank.example", key=READ,
                 files=query, data={"domain": "https://acme.example/"}).json()
    assert legit["verdict"] == "legitimate" and legit["matches"][0]["verdict"] == "legitimate"
    assert legit["domains"] == ["acme-bank.example", "acme.example"]
    jobs = "/api/v1/jobs"
    queued = call("POST", jobs, jobs, key=READ, files=[("file", ("q.png", baseline))],
                  data={"action": "search", "domain": ["https://acme-bank.example/", "evil.test"]})
    [searched] = wait_done(call, queued.json()["job"])["results"]
    assert searched["verdict"] == "phishing-suspected"
    assert searched["domains"] == ["acme-bank.example", "evil.test"]
    assert call("POST", jobs, jobs, key=READ, files=[("file", ("q.png", baseline))],
                data={"action": "search", "domain": "no host/"}).status_code == 400
    by_hash = "/api/v1/search/hashes"
    acme_hashes = call("POST", "/api/v1/hash", "/api/v1/hash", key=READ, files=query).json()["hashes"]
    hashed = call("POST", by_hash, by_hash, key=READ, json={"hashes": {"pdq": acme_hashes["pdq"]},
                                                          "domain": ["https://evil.test/acme"]}).json()
    assert hashed["verdict"] == "phishing-suspected" and hashed["domains"] == ["evil.test"]
    assert call("POST", by_hash, by_hash, key=READ, json={"hashes": {"pdq": acme_hashes["pdq"]},
                                                        "domain": 7}).status_code == 400
    unnamed = call("POST", "/api/v1/search", "/api/v1/search", key=READ, files=query).json()
    assert "verdict" not in unnamed and unnamed["matches"][0]["brand"]["name"] == "Acme"
    assert call("POST", "/api/v1/search", "/api/v1/search", key=READ, files=query,
                data={"domain": "exa mple"}).status_code == 400
    assert call("GET", brands, brands, key=READ).json() == {"brands": [set_brand.json()]}
    assert call("GET", one_brand, "/api/v1/brands/acme", key=READ).json()["name"] == "Acme"
    assert call("DELETE", one_brand, "/api/v1/brands/Acme").json() == {"name": "Acme", "status": "deleted"}
    assert call("DELETE", one_brand, "/api/v1/brands/Acme").status_code == 404
    assert call("GET", one_brand, "/api/v1/brands/Acme", key=READ).status_code == 404

    # noise bank: a picture marked noise is never a match, and a copy of it is answered as noise
    noise_one = "/api/v1/pictures/{id}/noise"
    assert call("POST", noise_one, f"/api/v1/pictures/{pid}/noise").json()["noise"]["reason"] == "marked"
    assert call("POST", noise_one, f"/api/v1/pictures/{pid}/noise", key=READ).status_code == 403
    assert call("POST", noise_one, f"/api/v1/pictures/{NO_ID}/noise").status_code == 404
    listed = call("GET", "/api/v1/noise", "/api/v1/noise", key=READ).json()
    assert pid in [p["id"] for p in listed["pictures"]] and listed["total"] >= 1
    assert call("GET", "/api/v1/noise", "/api/v1/noise?limit=0", key=READ).status_code == 400
    found = call("POST", "/api/v1/search", "/api/v1/search", key=READ, files=files).json()
    assert found["noise"] == {"reason": "matches-noise", "picture": pid}
    assert pid not in [m["id"] for m in found["matches"]]
    assert "noise" not in call("DELETE", noise_one, f"/api/v1/pictures/{pid}/noise").json()
    assert call("DELETE", noise_one, "/api/v1/pictures/zz/noise").status_code == 400

    # delete last: the picture is gone afterwards
    assert call("DELETE", one, f"/api/v1/pictures/{pid}").json() == {"id": pid, "status": "deleted"}
    assert call("DELETE", one, f"/api/v1/pictures/{pid}").status_code == 404

    exercised = {(path, method) for path, method, _ in contract.checked}
    assert exercised == served_operations()
    statuses = {status for _, _, status in contract.checked}
    assert {200, 201, 202, 400, 401, 403, 404, 413, 415, 421} <= statuses


def test_too_many_jobs_is_429_as_documented(tmp_path):
    env = {"QUAID_MAX_JOBS_PER_KEY": "1"}
    with ServerProcess(tmp_path, env, workers=0) as idle:  # no worker: the first job stays unfinished
        contract = Contract(idle.get("/api/v1/openapi.json").json())
        call = Caller(idle, contract)
        files = [("file", ("a.png", drawn(903)))]
        form = {"action": "search"}
        first = call("POST", "/api/v1/jobs", "/api/v1/jobs", key=None, files=files, data=form)
        assert first.status_code == 202
        second = call("POST", "/api/v1/jobs", "/api/v1/jobs", key=None, files=files, data=form)
        assert second.status_code == 429 and int(second.headers["Retry-After"]) > 0
        queued = call("GET", "/api/v1/jobs/{job}", f"/api/v1/jobs/{first.json()['job']}", key=None)
        assert queued.json()["status"] == "queued"


def readme_operations() -> set[tuple[str, str]]:
    """(path, method) named in the README's endpoint table: `GET/PATCH /path`; a path without
    methods takes those of the cell's previous one."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = text.split("| endpoint | what |", 1)[1].split("\n\n", 1)[0]
    found = set()
    for row in table.splitlines()[2:]:
        methods: list[str] = []
        for span in row.split("|")[1].split("`")[1::2]:
            words = span.split()
            if len(words) == 2:
                methods = words[0].lower().split("/")
            path = re.sub(r"<(\w+)>", r"{\1}", words[-1].split("?")[0])
            found |= {(path, method) for method in methods}
    return found


def test_the_readme_table_lists_every_documented_operation_and_no_other():
    from engine.service.openapi import document

    documented = {(path, method) for path, ops in document()["paths"].items() for method in ops}
    assert readme_operations() == documented


def test_store_down_is_503_as_documented(tmp_path):
    """/status answers its own Unavailable body, other endpoints the Error body."""
    redis_server = EmbeddedRedis(tmp_path / "external-redis")  # stands for an external, supervised Redis
    redis_server.acquire()
    try:
        with ServerProcess(tmp_path / "home", {"QUAID_REDIS_URL": redis_server.url}, workers=0) as down:
            call = Caller(down, Contract(down.get("/api/v1/openapi.json").json()))
            redis_server.stop()
            ready = call("GET", "/status", "/status", key=None, write_header=False)
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
            listed = call("GET", "/api/v1/clusters", "/api/v1/clusters", key=None)
            assert listed.status_code == 503 and listed.json()["error"].startswith("store unavailable")
    finally:
        redis_server.stop()

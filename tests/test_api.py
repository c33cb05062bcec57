"""The JSON API end to end: a real ``quaid serve`` process on loopback and its embedded Redis.

Every endpoint, every error code (400, 404, 405, 413, 415, 503; 401/403 are in
test_auth.py), the bad-input corpus, two server processes sharing one Redis,
the OpenAPI document against the app's real routes, and search latency for a
1280x800 screenshot.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
from badinput import bad_inputs
from drawing import drawn, variant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import read_http_answer
from serverproc import ServerProcess, run_quaid

from engine.store import EmbeddedRedis

UPLOAD_LIMIT = 3_000_000  # bytes; small so the 413 test sends little


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("api"), {"QUAID_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)})
    with proc:
        yield proc


def add(server, data: bytes, name: str = "p.png", **form) -> dict:
    response = server.post("/api/v1/pictures", files={"file": (name, data)}, data=form)
    assert response.status_code in (200, 201), response.text
    return response.json()


def search(server, data: bytes, **form) -> dict:
    response = server.post("/api/v1/search", files={"file": ("q.png", data)}, data=form)
    assert response.status_code == 200, response.text
    return response.json()


# --- pictures ---------------------------------------------------------------------------

def test_add_is_idempotent_and_answers_201_then_200(server):
    data = drawn(101)
    first = server.post("/api/v1/pictures", files={"file": ("a.png", data)},
                        data={"name": "first", "tags": ["misp", "phish"], "metadata": '{"event": 42}'})
    assert first.status_code == 201
    body = first.json()
    assert body["status"] == "added" and body["name"] == "first" and len(body["id"]) == 64
    again = server.post("/api/v1/pictures", files={"file": ("b.png", data)})
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate" and again.json()["id"] == body["id"]
    record = server.get(f"/api/v1/pictures/{body['id']}").json()
    assert record["name"] == "first" and record["tags"] == ["misp", "phish"]
    assert record["metadata"] == {"event": 42}


def test_get_image_patch_delete(server):
    added = add(server, drawn(102), "b.png")
    pid = added["id"]
    image = server.get(f"/api/v1/pictures/{pid}/image")
    assert image.status_code == 200 and image.headers["Content-Type"].startswith("image/")
    assert image.content[:2] == b"\xff\xd8"  # the default keep=thumbnail stores a JPEG
    patched = server.request("PATCH", f"/api/v1/pictures/{pid}",
                             json={"tags": ["reviewed"], "metadata": {"source": "test"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["tags"] == ["reviewed"] and patched.json()["metadata"] == {"source": "test"}
    assert server.request("DELETE", f"/api/v1/pictures/{pid}").json() == {"id": pid, "status": "deleted"}
    for path in (f"/api/v1/pictures/{pid}", f"/api/v1/pictures/{pid}/image"):
        gone = server.get(path)
        assert gone.status_code == 404 and "error" in gone.json()
    assert server.request("DELETE", f"/api/v1/pictures/{pid}").status_code == 404


def test_search_finds_a_modified_copy_and_rejects_an_unrelated_picture(server):
    original = drawn(103, size=(1280, 800))
    added = add(server, original, "original.png", tags="ref")
    found = search(server, variant(original, scale=0.7, quality=75))
    assert "query" not in found
    assert found["decision"] == "accepted"
    best = found["matches"][0]
    assert best["id"] == added["id"] and best["decision"] == "accepted"
    assert best["tags"] == ["ref"] and best["cluster"] == added["cluster"]
    assert best["algorithms"] and all({"distance", "decision"} <= set(v) for v in best["algorithms"].values())
    other = search(server, drawn(9103, size=(1280, 800)))
    assert added["id"] not in [m["id"] for m in other["matches"] if m["decision"] == "accepted"]


def test_search_top_limits_matches(server):
    base = drawn(104)
    for scale in (0.9, 0.8, 0.7):
        add(server, variant(base, scale=scale), f"v{scale}.jpg")
    assert len(search(server, base, top=1)["matches"]) == 1
    assert len(search(server, base, top=10)["matches"]) >= 2


def test_search_accepts_a_reencoded_copy_of_a_1280x800_screenshot(server):
    added = add(server, drawn(105, size=(1280, 800)))
    query = variant(drawn(105, size=(1280, 800)), scale=1.0, quality=85)
    answer = search(server, query)  # search speed is measured by benchmarks/bench_search.py, not here
    assert answer["decision"] == "accepted"
    assert answer["matches"][0]["id"] == added["id"]


def test_clusters_and_export(server):
    added = add(server, drawn(106), "c.png")
    copy = add(server, variant(drawn(106), scale=0.8), "c-copy.jpg")
    assert copy["cluster"] == added["cluster"]
    clusters = server.get("/api/v1/clusters").json()["clusters"]
    assert any(c["cluster"] == added["cluster"] and c["size"] >= 2 for c in clusters)
    one = server.get(f"/api/v1/clusters/{added['cluster']}").json()
    assert {m["id"] for m in one["members"]} >= {added["id"], copy["id"]}
    graph = server.get("/api/v1/export", params={"format": "graph"}).json()
    assert {added["id"], copy["id"]} <= {n["id"] for n in graph["nodes"]}
    assert "edges" in graph and "clusters" in graph
    everything = server.get("/api/v1/export").json()
    assert added["id"] in json.dumps(everything)
    assert server.get("/api/v1/clusters/999999999").status_code == 404
    assert server.get("/api/v1/clusters/not-a-number").status_code == 400
    assert server.get("/api/v1/export", params={"format": "pickle"}).status_code == 400


def test_status_endpoints(server):
    live = server.get("/status/live")
    assert live.status_code == 200 and live.json()["status"] == "alive"
    ready = server.get("/status").json()
    assert ready["status"] == "ready" and ready["stats"]["pictures"] >= 0
    assert ready["max_upload_bytes"] == UPLOAD_LIMIT and ready["auth"] is False


# --- errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, kwargs, status", [
    ("POST", "/api/v1/pictures", {"data": {"name": "x"}, "files": {"other": ("x", b"1")}}, 400),
    ("POST", "/api/v1/pictures", {"files": {"file": ("x.png", b"x")}, "data": {"metadata": "{nope"}}, 400),
    ("POST", "/api/v1/pictures", {"files": {"file": ("x.png", b"x")}, "data": {"metadata": "[1]"}}, 400),
    ("POST", "/api/v1/search", {"files": {"file": ("x.png", b"x")}, "data": {"top": "many"}}, 400),
    ("POST", "/api/v1/search", {"files": {"file": ("x.png", b"x")}, "data": {"top": "0"}}, 400),
    ("GET", "/api/v1/pictures/not-an-id", {}, 400),
    ("PATCH", "/api/v1/pictures/" + "0" * 64, {"json": {"colour": "red"}}, 400),
    ("PATCH", "/api/v1/pictures/" + "0" * 64, {"json": {"tags": "x"}}, 400),
    ("GET", "/api/v1/pictures/" + "0" * 64, {}, 404),
    ("PATCH", "/api/v1/pictures/" + "0" * 64, {"json": {"tags": ["x"]}}, 404),
    ("GET", "/api/v1/jobs/" + "0" * 32, {}, 404),
    ("GET", "/api/v1/nowhere", {}, 404),
    ("PUT", "/api/v1/search", {}, 405),
    ("DELETE", "/api/v1/clusters", {}, 405),
    ("POST", "/api/v1/search", {"files": {"file": ("x.png", b"<html>not a picture</html>")}}, 415),
    ("POST", "/api/v1/search", {"json": {"file": "x"}}, 415),
    ("POST", "/api/v1/pictures", {"data": b"raw bytes", "headers": {"Content-Type": "image/png"}}, 415),
])
def test_error_codes_are_json_one_liners(server, method, path, kwargs, status):
    response = server.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"] and "\n" not in body["error"]


def test_file_over_the_upload_limit_is_413(server):
    response = server.post("/api/v1/search", files={"file": ("big.png", b"\0" * (UPLOAD_LIMIT + 10))})
    assert response.status_code == 413 and "limit" in response.json()["error"]


def test_huge_upload_is_refused_from_its_headers_without_sending_the_body(server):
    """A declared 5 GB body gets 413 at once; the server never waits for (or reads) the body."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/search HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 5000000000\r\n\r\n--b\r\n")
        answer = read_http_answer(sock)  # headers and body may arrive in separate segments
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413")
    assert "application/json" in head and "error" in json.loads(body)
    assert server.get("/status/live").status_code == 200


def test_bad_input_corpus_gets_clear_errors_and_the_service_stays_up(server):
    before = server.get("/status").json()["stats"]["pictures"]
    for name, data, expected in bad_inputs():
        response = server.post("/api/v1/search", files={"file": (name + ".png", data)})
        if expected == "ok":
            assert response.status_code == 200, (name, response.text)
        else:
            assert response.status_code in (413, 415), (name, response.status_code, response.text)
            assert response.json()["error"]
    assert server.get("/status").json()["stats"]["pictures"] == before
    assert server.process.poll() is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=60), tags=st.lists(st.text(max_size=20), max_size=4),
       metadata=st.one_of(st.text(max_size=40),
                          st.dictionaries(st.text(max_size=8), st.integers(), max_size=3).map(json.dumps)),
       top=st.text(max_size=6), ident=st.text(max_size=70))
def test_arbitrary_form_fields_never_break_the_service(server, name, tags, metadata, top, ident):
    picture = drawn(107)
    response = server.post("/api/v1/pictures", files={"file": ("p.png", picture)},
                           data={"name": name, "tags": tags, "metadata": metadata})
    assert response.status_code in (200, 201, 400), response.text
    if response.status_code in (200, 201):
        record = server.get(f"/api/v1/pictures/{response.json()['id']}").json()
        assert record["id"] == response.json()["id"]
    found = server.post("/api/v1/search", files={"file": ("q.png", picture)}, data={"top": top})
    assert found.status_code in (200, 400), found.text
    looked_up = server.get("/api/v1/pictures/" + ident.replace("/", "").replace("?", "").replace("#", ""))
    assert looked_up.status_code in (400, 404, 405), looked_up.text
    assert "error" in looked_up.json()


# --- deployment shapes --------------------------------------------------------------------

def test_two_servers_sharing_one_redis_answer_the_same(server, tmp_path):
    url = EmbeddedRedis(server.home / "redis").url  # the first server's embedded Redis
    with ServerProcess(tmp_path / "second", {"QUAID_REDIS_URL": url,
                                             "QUAID_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}) as second:
        original = drawn(108, size=(1024, 640))
        added = add(server, original, "shared.png")
        query = variant(original, scale=0.8)
        first_answer, second_answer = search(server, query), search(second, query)
        assert first_answer == second_answer
        assert first_answer["matches"][0]["id"] == added["id"]
        duplicate = add(second, original, "again.png")
        assert duplicate["status"] == "duplicate" and duplicate["cluster"] == added["cluster"]
        assert second.request("DELETE", f"/api/v1/pictures/{added['id']}").status_code == 200
        assert server.get(f"/api/v1/pictures/{added['id']}").status_code == 404
        assert added["id"] not in [m["id"] for m in search(server, query)["matches"]]
        job = second.post("/api/v1/jobs", files=[("file", ("j.png", drawn(109)))], data={"action": "add"})
        assert server.get(f"/api/v1/jobs/{job.json()['job']}").status_code == 200


def test_store_down_gives_503_and_the_service_recovers(tmp_path):
    redis_server = EmbeddedRedis(tmp_path / "own-redis")
    redis_server.acquire()
    try:
        with ServerProcess(tmp_path / "home", {"QUAID_REDIS_URL": redis_server.url}) as proc:
            added = add(proc, drawn(110))
            redis_server.stop()
            answers = (proc.get("/status"), proc.post("/api/v1/search", files={"file": ("q", drawn(110))}),
                       proc.get(f"/api/v1/pictures/{added['id']}"))
            for response in answers:
                assert response.status_code == 503, response.text
                assert "store unavailable" in response.json()["error"]
            assert proc.get("/status/live").status_code == 200
            redis_server.acquire()
            assert proc.get("/status").status_code == 200
            assert search(proc, drawn(110))["matches"][0]["id"] == added["id"]
    finally:
        redis_server.stop()


def test_unreachable_redis_at_start_is_a_one_line_error(tmp_path):
    done = run_quaid(tmp_path, "serve", "--port", "0", env={"QUAID_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert done.returncode != 0
    message = [line for line in done.stderr.splitlines() if line.startswith("quaid serve:")]
    assert len(message) == 1 and "cannot reach Redis" in message[0], done.stderr


# --- the OpenAPI document -----------------------------------------------------------------

def test_openapi_documents_every_route_and_nothing_else(server, quaid, quaid_settings):
    from engine.service.app import create_app

    app = create_app(quaid_settings, quaid)
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("ui."):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        path = path.replace("{pid}", "{id}").replace("{cid}", "{id}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((path, method.lower()))
    document = server.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert served == documented
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert op["responses"] and op["summary"], (path, method)
            refs = json.dumps(op)
            for name in ("#/components/schemas/", "#/components/responses/"):
                for target in refs.split(name)[1:]:
                    key = target.split('"')[0]
                    section = "schemas" if "schemas" in name else "responses"
                    assert key in document["components"][section], (path, method, key)

"""Hostile input on the HTTP API, against a real ``quaid serve`` and its embedded Redis.

What test_api.py already covers is not repeated here (each error code, the corpus on
``/search``, a 5 GB Content-Length answered from the headers alone). Added here:

* uploads far above the limit whose body keeps coming — with a huge ``Content-Length``
  and chunked without one — on every upload endpoint: refused with a JSON 413 after at
  most about the limit, the server's memory does not grow with what the client sends;
* the bad-input corpus through ``POST /pictures`` and batch jobs (not only search);
* property-based tests (hypothesis) over every input: JSON bodies, metadata text, ids in
  paths, query parameters. Never a 5xx, every refusal a JSON ``{"error"}``, every answer
  strict JSON (no ``NaN``), and no stored picture changed by a refused request.
"""

from __future__ import annotations

import json
import math
import socket
import time
from urllib.parse import quote, urlsplit

import pytest
from badinput import bad_inputs
from drawing import drawn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import rss_kib, store_snapshot, stream_request
from serverproc import ServerProcess

from engine.store import EmbeddedRedis

UPLOAD_LIMIT = 3_000_000  # bytes
MEGABYTE = b"\0" * (1 << 20)
PROPERTIES = settings(max_examples=40, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("reliability-api")
    proc = ServerProcess(home, {"QUAID_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}, args=("--threads", "4"))
    with proc:
        for seed in (801, 802):
            added = proc.post("/api/v1/pictures", files={"file": (f"{seed}.png", drawn(seed))})
            assert added.status_code == 201
        yield proc
    EmbeddedRedis(home / "redis").stop()


@pytest.fixture(scope="module")
def store(server):
    client = EmbeddedRedis(server.home / "redis").client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def stored_id(server) -> str:
    return server.post("/api/v1/pictures", files={"file": ("kept.png", drawn(803))}).json()["id"]


def strict_json(text: str) -> object:
    """Parse as RFC 8259 JSON: NaN and Infinity are refused."""
    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def assert_json_error(response, statuses=(400, 404, 405, 413, 415)) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = strict_json(response.text)
    assert set(body) == {"error"} and body["error"] and "\n" not in body["error"]


# --- uploads that never end -------------------------------------------------------------

def endless_multipart():
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="huge.png"\r\n\r\n'
    while True:
        yield MEGABYTE


def chunked(body):
    for chunk in body:
        yield b"%x\r\n%s\r\n" % (len(chunk), chunk)


@pytest.mark.parametrize("path", ["/api/v1/pictures", "/api/v1/search", "/api/v1/jobs"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_endless_upload_is_refused_at_the_limit_with_bounded_memory(server, store, path, framing):
    before_store = store_snapshot(store)
    before_rss = rss_kib(server.process.pid)
    if framing == "content-length":
        length_header, body = "Content-Length: 5000000000", endless_multipart()  # 5 GB declared
    else:
        length_header, body = "Transfer-Encoding: chunked", chunked(endless_multipart())
    head = (f"POST {path}?action=add HTTP/1.1\r\nHost: quaid\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\n{length_header}\r\n\r\n")
    started = time.monotonic()
    answer, sent = stream_request(server.url, head, body, give_up_after=400 << 20)
    status_line, _, rest = answer.partition("\r\n")
    assert status_line.startswith("HTTP/1.1 413"), answer[:300]
    assert "limit" in strict_json(rest.partition("\r\n\r\n")[2])["error"] or "exceeds" in answer
    # The server stopped us long before the 400 MB we were ready to send: it never reads it all.
    assert sent < 4 * UPLOAD_LIMIT + (16 << 20), sent
    assert time.monotonic() - started < 30
    assert rss_kib(server.process.pid) - before_rss < 40 * 1024  # KiB: no copy of the body in memory
    assert server.get("/status/live").status_code == 200
    assert store_snapshot(store) == before_store


def test_slow_and_stalled_clients_do_not_block_the_others(server):
    """Slowloris: 40 connections that never finish their headers or body hold no request thread."""
    parts = urlsplit(server.url)
    stalled = []
    try:
        for n in range(40):
            sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
            if n % 2:
                sock.sendall(b"POST /api/v1/search HTTP/1.1\r\nHost: quaid\r\nX-Slow: ")  # headers never end
            else:
                sock.sendall(b"POST /api/v1/pictures HTTP/1.1\r\nHost: quaid\r\nContent-Length: 1000000\r\n"
                             b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")  # body stalls
            stalled.append(sock)
        started = time.monotonic()
        found = server.post("/api/v1/search", files={"file": ("q.png", drawn(801))})
        assert found.status_code == 200 and found.json()["matches"][0]["name"] == "801.png"
        assert time.monotonic() - started < 10
    finally:
        for sock in stalled:
            sock.close()
    assert server.get("/status/live").status_code == 200


def test_a_form_with_thousands_of_parts_is_refused_cleanly(server, store):
    before = store_snapshot(store)
    fields = [("tags", f"t{n}") for n in range(5000)]
    response = server.post("/api/v1/pictures", files={"file": ("p.png", drawn(805))}, data=fields)
    assert_json_error(response, (400, 413))
    assert store_snapshot(store) == before


# --- the corpus on the write paths -----------------------------------------------------------

def test_bad_input_corpus_through_add_and_jobs_changes_no_stored_picture(server, store):
    corpus = list(bad_inputs())
    before = store_snapshot(store)
    rss_before = rss_kib(server.process.pid)
    accepted = set()
    for name, data, expected in corpus:
        response = server.post("/api/v1/pictures", files={"file": (name + ".png", data)}, data={"name": name})
        if expected == "ok":
            assert response.status_code == 201, (name, response.text)
            accepted.add(response.json()["id"])
        else:
            assert_json_error(response, (413, 415))
    after = store_snapshot(store)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing stored changed
    assert {k.decode().split("{")[1].rstrip("}") for k in set(after) - set(before)} == accepted

    job = server.post("/api/v1/jobs", files=[("file", (n, d)) for n, d, _ in corpus], data={"action": "add"})
    assert job.status_code == 202, job.text
    deadline, path = time.monotonic() + 120, f"/api/v1/jobs/{job.json()['job']}"
    while (state := server.get(path).json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["status"] == "done"
    for (name, _, expected), result in zip(corpus, state["results"], strict=True):
        assert result["file"] == name
        if expected == "ok":
            assert result["status"] == "duplicate"  # stored above, and not changed by the job
        else:
            assert result["status"] == "error" and result["error"] and "\n" not in result["error"]
    assert store_snapshot(store) == after
    assert rss_kib(server.process.pid) - rss_before < 200 * 1024  # KiB: the bomb was never decoded
    assert server.process.poll() is None


# --- property-based: any input, never a 5xx ----------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12)
PATCH_BODIES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries({}, optional={"tags": JSON_VALUES | st.lists(st.text(max_size=30), max_size=5),
                                        "metadata": JSON_VALUES, "name": JSON_VALUES}))
DEEP = st.integers(1, 5000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth)


@PROPERTIES
@given(body=PATCH_BODIES)
def test_any_json_body_of_patch_is_applied_or_refused_cleanly(server, store, stored_id, body):
    features = store.hgetall(f"quaid:features:{{{stored_id}}}")
    response = server.request("PATCH", f"/api/v1/pictures/{stored_id}", data=json.dumps(body),
                              headers={"Content-Type": "application/json"})
    if response.status_code == 200:
        record = strict_json(response.text)
        assert record["id"] == stored_id
        if isinstance(body.get("metadata"), dict):
            assert record["metadata"] == body["metadata"]
        assert strict_json(server.get(f"/api/v1/pictures/{stored_id}").text) == record
    else:
        assert_json_error(response, (400,))
    assert store.hgetall(f"quaid:features:{{{stored_id}}}") == features  # only tags/metadata may change


@PROPERTIES
@given(raw=st.binary(max_size=200) | DEEP.map(str.encode),
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]))
def test_any_raw_patch_body_is_a_json_error(server, stored_id, raw, content_type):
    response = server.request("PATCH", f"/api/v1/pictures/{stored_id}", data=raw,
                              headers={"Content-Type": content_type})
    if response.status_code != 200:
        assert_json_error(response, (400,))


@PROPERTIES
@given(metadata=st.one_of(DEEP, JSON_VALUES.map(json.dumps), st.text(max_size=80)),
       name=st.text(max_size=40), tags=st.lists(st.text(max_size=16), max_size=3))
def test_any_metadata_text_is_stored_as_strict_json_or_refused(server, metadata, name, tags):
    picture = drawn(804)
    response = server.post("/api/v1/pictures", files={"file": ("p.png", picture)},
                           data={"metadata": metadata, "name": name, "tags": tags})
    if response.status_code in (200, 201):
        record = strict_json(server.get(f"/api/v1/pictures/{response.json()['id']}").text)
        assert not any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(record["metadata"]))
        server.request("DELETE", f"/api/v1/pictures/{response.json()['id']}")  # next example adds anew
    else:
        assert_json_error(response, (400,))


@PROPERTIES
@given(ident=st.text(min_size=1, max_size=90))
def test_any_id_in_a_path_is_a_json_error(server, ident):
    segment = quote(ident, safe="")
    for method, path in (("GET", f"/api/v1/pictures/{segment}"), ("GET", f"/api/v1/pictures/{segment}/image"),
                         ("DELETE", f"/api/v1/pictures/{segment}"), ("GET", f"/api/v1/clusters/{segment}"),
                         ("GET", f"/api/v1/jobs/{segment}"), ("GET", f"/api/v1/review/{segment}")):
        response = server.request(method, path)
        if response.status_code != 200:  # a numeric cluster id can exist
            assert_json_error(response, (400, 404, 405))
        else:
            assert path.startswith("/api/v1/clusters/")


@PROPERTIES
@given(body=JSON_VALUES.map(json.dumps) | DEEP, item=st.text(alphabet="0123456789abcdef", max_size=40))
def test_any_review_verdict_body_answers_json_without_a_5xx(server, body, item):
    response = server.post(f"/api/v1/review/{item or '0'}", data=body,
                           headers={"Content-Type": "application/json"})
    assert_json_error(response, (400, 404))


QUERY = st.dictionaries(st.sampled_from(["top", "all", "format", "limit", "status", "action", "x"]),
                        st.text(max_size=12), max_size=4)


@PROPERTIES
@given(params=QUERY, form=QUERY)
def test_any_query_parameters_answer_json_without_a_5xx(server, params, form):
    for path in ("/api/v1/export", "/api/v1/clusters", "/api/v1/review", "/api/v1/review/labels", "/status"):
        response = server.get(path, params=params)
        if response.status_code != 200:
            assert_json_error(response, (400,))
        else:
            strict_json(response.text)
    found = server.post("/api/v1/search", params=params, data=form, files={"file": ("q.png", drawn(801))})
    if found.status_code != 200:
        assert_json_error(found, (400,))
    else:
        assert strict_json(found.text)["decision"] in ("accepted", "to-review", "rejected")


def _leaves(value: object):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value

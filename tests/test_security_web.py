"""What a web page, a stolen read key or a malformed request can do to the service: nothing it should.

The app runs in Flask's test client on a real Redis (conftest's ``quaid``), which sends exactly the
headers a test gives: a browser's ``Origin`` and ``Sec-Fetch-Site``, a rebinding ``Host``. The same
attacks from a real Chromium are in ``test_browser_attacks.py``; the Redis password against a real
``quaid serve`` in ``test_security_secrets.py``.
"""

from __future__ import annotations

import hmac
import io
import json
from dataclasses import replace

import pytest
from drawing import drawn

from engine.config import Settings, load_settings, redact_url
from engine.errors import BadInput
from engine.service.app import create_app
from engine.service.auth import KeyRing

HEADER = "X-Quaid-Request"  # the header quaid's clients send (engine.service.guard)
OURS = {HEADER: "1"}
READ, WRITE = "read-key-0123456789", "write-key-9876543210"


def make_app(quaid, **settings):
    return create_app(replace(quaid.settings, **settings), quaid=quaid).test_client()


@pytest.fixture
def client(quaid):
    return make_app(quaid)


def upload(name: str = "a.png", seed: int = 1) -> dict:
    return {"file": (io.BytesIO(drawn(seed)), name)}


def stored(quaid) -> int:
    return quaid.stats()["pictures"]


# --- Host allowlist (DNS rebinding) ----------------------------------------------------------------

@pytest.mark.parametrize("host", ["rebind.attacker.example", "rebind.attacker.example:8080",
                                  "127.0.0.1.nip.io:8080", "10.0.0.5:8080", "0.0.0.0:8080", "quaid"])
def test_a_host_name_not_configured_is_refused_before_anything_is_read(client, quaid, host):
    quaid.add(drawn(11), name="secret-phish.png")
    for path in ("/api/v1/export", "/status", "/api/v1/clusters", "/"):
        answer = client.get(path, headers={"Host": host})
        assert answer.status_code == 421, (host, path)
        assert "public_hosts" in answer.get_json()["error"]
        assert b"secret-phish" not in answer.data
    added = client.post("/api/v1/pictures", data=upload(), headers={"Host": host, **OURS})
    assert added.status_code == 421 and stored(quaid) == 1


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "127.0.0.1", "localhost:5000", "LOCALHOST",
                                  "[::1]:8080", "127.0.0.2:9"])
def test_loopback_names_are_served_on_any_port(client, host):
    assert client.get("/api/v1/export", headers={"Host": host}).status_code == 200


def test_configured_public_names_and_the_bound_address_are_served(quaid):
    client = make_app(quaid, public_hosts=("quaid.team.example",), host="10.0.0.5", write_keys=(WRITE,))
    for host in ("quaid.team.example", "Quaid.Team.Example.:443", "10.0.0.5:8080"):
        answer = client.get("/api/v1/export", headers={"Host": host, "Authorization": f"Bearer {WRITE}"})
        assert answer.status_code == 200, host
    assert client.get("/api/v1/export", headers={"Host": "other.team.example"}).status_code == 421


# --- other origins -----------------------------------------------------------------------------------

@pytest.mark.parametrize("browser", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://127.0.0.2:8000"},
    {"Origin": "http://localhost:9999"},  # another port of the same machine is another origin
    {"Origin": "null"},  # sandboxed frame, file: page, cross-origin redirect
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
])
def test_another_origin_can_neither_write_nor_read(client, quaid, browser):
    pid = quaid.add(drawn(12), name="kept.png").id
    answers = [
        client.post("/api/v1/pictures", data=upload(seed=13), headers={**browser, **OURS}),
        client.post("/api/v1/search", data=upload(seed=12), headers={**browser, **OURS}),
        client.patch(f"/api/v1/pictures/{pid}", json={"tags": ["owned"]}, headers=browser),
        client.delete(f"/api/v1/pictures/{pid}", headers={**browser, **OURS}),
        client.get("/api/v1/export", headers=browser),
        client.get(f"/api/v1/pictures/{pid}/image", headers=browser),
    ]
    assert [a.status_code for a in answers] == [403] * len(answers)
    assert all("error" in a.get_json() for a in answers)
    assert stored(quaid) == 1 and not quaid.get(pid).tags


def test_same_origin_requests_from_the_web_ui_are_served(client):
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin", **OURS}
    assert client.post("/api/v1/pictures", data=upload(), headers=same).status_code == 201
    assert client.get("/api/v1/export", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    typed = {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}  # the analyst typed the URL
    assert client.get("/api/v1/export", headers=typed).status_code == 200


def test_a_link_from_another_site_opens_the_ui_page_but_no_data(client):
    link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    assert client.get("/", headers=link).status_code == 200
    assert client.get("/ui/app.js", headers=link).status_code == 200
    assert client.get("/api/v1/export", headers=link).status_code == 403


# --- writes a page cannot forge ------------------------------------------------------------------

def test_a_plain_form_post_is_refused_whatever_the_browser_omits(client, quaid):
    """No Origin, no Sec-Fetch-*: what an old browser (or a non-secure origin) sends for a form."""
    pid = quaid.add(drawn(14), name="kept.png").id
    answers = [
        client.post("/api/v1/pictures", data=upload(seed=15)),
        client.post("/api/v1/jobs", data={"action": "add", **upload(seed=16)}),
        client.post("/api/v1/search", data=upload(seed=14)),
        client.delete(f"/api/v1/pictures/{pid}"),
        client.patch(f"/api/v1/pictures/{pid}", data='{"tags": ["x"]}', content_type="text/plain"),
    ]
    assert [a.status_code for a in answers] == [403] * len(answers)
    assert HEADER in answers[0].get_json()["error"]
    assert stored(quaid) == 1 and not quaid.get(pid).tags


def test_quaid_clients_with_the_header_or_json_are_served(client, quaid):
    added = client.post("/api/v1/pictures", data=upload(seed=17), headers=OURS)
    assert added.status_code == 201
    pid = added.get_json()["id"]
    assert client.patch(f"/api/v1/pictures/{pid}", json={"tags": ["t"]}).status_code == 200
    assert client.delete(f"/api/v1/pictures/{pid}", headers=OURS).status_code == 200


def test_a_review_verdict_is_read_from_json_only(client, quaid):
    pid = quaid.add(drawn(18), name="m.png").id
    review = client.application.extensions["quaid_review"]
    item = review.record(drawn(19), "q.png", {"matches": [{"id": pid, "decision": "to-review"}]})[0]
    form = client.post(f"/api/v1/review/{item}", data={"verdict": "accepted"}, headers=OURS)
    assert form.status_code == 400
    assert review.get(item)["verdict"] is None
    assert client.post(f"/api/v1/review/{item}", json={"verdict": "accepted"}).status_code == 200


# --- CORS --------------------------------------------------------------------------------------------

def test_cors_is_closed_unless_an_origin_is_configured(quaid):
    closed = make_app(quaid)
    preflight = {"Origin": "https://misp.example", "Access-Control-Request-Method": "POST"}
    answer = closed.options("/api/v1/pictures", headers=preflight)
    assert answer.status_code == 403 and "Access-Control-Allow-Origin" not in answer.headers
    assert "Access-Control-Allow-Origin" not in closed.get("/api/v1/export").headers

    opened = make_app(quaid, cors_origins=("https://misp.example",))
    answer = opened.options("/api/v1/pictures", headers=preflight)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == "https://misp.example"
    assert HEADER in answer.headers["Access-Control-Allow-Headers"]
    from_misp = {"Origin": "https://misp.example", "Sec-Fetch-Site": "cross-site"}
    read = opened.get("/api/v1/export", headers=from_misp)
    assert read.status_code == 200 and read.headers["Access-Control-Allow-Origin"] == "https://misp.example"
    form = opened.post("/api/v1/pictures", data=upload(seed=21), headers=from_misp)  # a form on its pages
    assert form.status_code == 403 and stored(quaid) == 0
    script = opened.post("/api/v1/pictures", data=upload(seed=21), headers={**from_misp, **OURS})
    assert script.status_code == 201 and script.headers["Access-Control-Allow-Origin"] == "https://misp.example"
    other = opened.get("/api/v1/export", headers={"Origin": "https://evil.example"})
    assert other.status_code == 403 and "Access-Control-Allow-Origin" not in other.headers


def test_no_answer_can_be_embedded_by_another_site(client, quaid):
    pid = quaid.add(drawn(20), name="p.png").id
    for path in ("/api/v1/export", f"/api/v1/pictures/{pid}/image", "/status", "/nowhere"):
        answer = client.get(path)
        assert answer.headers["Cross-Origin-Resource-Policy"] == "same-origin", path
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path


@pytest.mark.parametrize("values, problem", [
    ({"cors_origins": ("*",)}, "cors_origins"), ({"cors_origins": ("misp.example",)}, "cors_origins"),
    ({"cors_origins": ("https://misp.example/path",)}, "cors_origins"),
    ({"public_hosts": ("",)}, "public_hosts"), ({"public_hosts": ("*",)}, "public_hosts"),
    ({"public_hosts": ("https://quaid.example",)}, "public_hosts"),
    ({"public_hosts": ("quaid.example:8443",)}, "public_hosts"),
])
def test_origin_and_host_settings_that_would_open_everything_are_refused(values, problem):
    with pytest.raises(BadInput, match=problem):
        Settings(**values)


# --- keys ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("keys", [("",), (" ",), ("good-key-123", "\t")])
@pytest.mark.parametrize("kind", ["read_keys", "write_keys"])
def test_an_empty_or_blank_key_is_refused(keys, kind):
    with pytest.raises(BadInput, match=f"{kind}: empty or blank API key"):
        Settings(**{kind: keys})


@pytest.mark.parametrize("raw", ["", " ", "k1-long-enough,", ",k1-long-enough", "k1-long,,k2-long"])
def test_a_blank_entry_in_the_key_variable_is_refused(monkeypatch, tmp_path, raw):
    monkeypatch.setenv("QUAID_WRITE_KEYS", raw)
    with pytest.raises(BadInput, match="write_keys: empty or blank"):
        load_settings(home=tmp_path)


def test_a_blank_key_in_the_config_file_is_refused(monkeypatch, tmp_path):
    config = tmp_path / "quaid.json"
    config.write_text(json.dumps({"write_keys": [""], "host": "0.0.0.0"}))
    monkeypatch.setenv("QUAID_CONFIG", str(config))
    with pytest.raises(BadInput, match="write_keys: empty or blank"):
        load_settings(home=tmp_path)


def test_keys_are_compared_in_constant_time(monkeypatch):
    compared, real = [], hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("engine.service.auth.hmac.compare_digest", spy)
    ring = KeyRing((READ,), (WRITE,))
    ring.access("guess")
    assert len(compared) == 2  # every key compared, none short-circuited by ==


# --- read-key abuse: job quotas ------------------------------------------------------------------

def job(client, key: str, count: int = 1, action: str = "search"):
    files = [("file", (io.BytesIO(drawn(30 + n)), f"{n}.png")) for n in range(count)]
    return client.post("/api/v1/jobs", data={"action": action, "file": [f[1] for f in files]},
                       headers={"Authorization": f"Bearer {key}", **OURS})


def test_jobs_in_flight_per_key_are_capped_with_429_and_retry_after(quaid):
    client = make_app(quaid, read_keys=(READ, "other-read-key-42"), write_keys=(WRITE,), max_jobs_per_key=2)
    assert [job(client, READ).status_code for _ in range(2)] == [202, 202]
    refused = job(client, READ)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "max_jobs_per_key" in refused.get_json()["error"]
    assert READ not in refused.get_data(as_text=True)
    assert job(client, "other-read-key-42").status_code == 202  # another key has its own quota


def test_a_finished_job_frees_its_place(quaid):
    client = make_app(quaid, read_keys=(READ,), write_keys=(WRITE,), max_jobs_per_key=1)
    first = job(client, READ).get_json()["job"]
    assert job(client, READ).status_code == 429
    quaid.records.redis.hset(f"quaid:job:{{{first}}}", "status", "done")
    assert job(client, READ).status_code == 202


def test_files_per_job_and_queued_jobs_are_capped(quaid):
    client = make_app(quaid, read_keys=(READ,), write_keys=(WRITE,), max_job_files=3, max_queued_jobs=2)
    too_many = job(client, READ, count=4)
    assert too_many.status_code == 400 and "max_job_files" in too_many.get_json()["error"]
    assert [job(client, WRITE).status_code for _ in range(2)] == [202, 202]
    full = job(client, READ)
    assert full.status_code == 429 and full.headers["Retry-After"]


# --- API answers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("tags", ['[{"a": 1}]', "[1, 2]", '[["x"]]', "[null]",
                                  "[" * 5000, "[" * 5000 + "]" * 5000])  # deep: found by the fuzz test
def test_tags_that_are_not_strings_are_400_not_stored(client, quaid, tags):
    answer = client.post("/api/v1/pictures", data={**upload(seed=40), "tags": tags}, headers=OURS)
    assert answer.status_code == 400 and "tags" in answer.get_json()["error"]
    assert stored(quaid) == 0


@pytest.mark.parametrize("cid, status", [("9" * 30, 404), ("9223372036854775808", 404), ("0" * 200, 404),
                                         ("-1", 400), ("1.5", 400), ("abc", 400), ("١٢", 400)])
def test_impossible_cluster_ids_are_404_and_non_numbers_400(client, cid, status):
    answer = client.get(f"/api/v1/clusters/{cid}")
    assert answer.status_code == status and answer.get_json()["error"]


def test_a_second_file_part_is_400_not_dropped(client, quaid):
    for path in ("/api/v1/pictures", "/api/v1/search"):
        two = {"file": [(io.BytesIO(drawn(41)), "a.png"), (io.BytesIO(drawn(42)), "b.png")]}
        answer = client.post(path, data=two, headers=OURS)
        assert answer.status_code == 400 and "one 'file' part" in answer.get_json()["error"]
    assert stored(quaid) == 0


def test_too_many_form_fields_names_the_form_field_limit(client, quaid):
    fields = {f"f{n}": "x" for n in range(5000)}
    answer = client.post("/api/v1/pictures", data={**upload(seed=43), **fields}, headers=OURS)
    assert answer.status_code == 413
    message = answer.get_json()["error"]
    assert "form-field limit" in message and "body" not in message
    assert stored(quaid) == 0


# --- secrets ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, secret", [
    ("redis://:secretpw@127.0.0.1:6390/0", "secretpw"), ("redis://user:secretpw@h", "secretpw"),
    ("rediss://secretpw@h:6380", "secretpw"), ("redis://h:1/0?password=secretpw&db=2", "secretpw"),
    ("unix://:secretpw@/run/redis.sock?db=0", "secretpw"),
])
def test_redis_urls_are_redacted(url, secret):
    assert secret not in redact_url(url) and "***" in redact_url(url)


def test_status_and_stats_never_show_the_redis_password(quaid):
    quaid.settings = replace(quaid.settings, redis_url="redis://:secretpw@127.0.0.1:6390/0")
    client = make_app(quaid)
    body = client.get("/status").get_data(as_text=True)
    assert "secretpw" not in body and "***" in body

"""API keys against a real ``quaid serve``: 401 without/with an unknown key, 403 for a read-only key
writing, refusals logged (without the key), open health and UI pages, and refusal to bind a
non-loopback address without keys.
"""

from __future__ import annotations

import pytest
from drawing import drawn
from serverproc import ServerProcess, run_quaid

from engine.service.auth import KeyRing, is_loopback

READ, WRITE = "read-key-0123456789", "write-key-9876543210"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"QUAID_READ_KEYS": READ, "QUAID_WRITE_KEYS": WRITE}
    with ServerProcess(tmp_path_factory.mktemp("auth"), env) as proc:
        yield proc


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_no_key_or_unknown_key_is_401_and_logged_without_the_key(server):
    for headers in ({}, bearer("guess"), {"Authorization": f"Basic {WRITE}"}, {"Authorization": "Bearer "}):
        response = server.get("/api/v1/clusters", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["error"]
    log = server.log()
    assert "refused GET /api/v1/clusters from 127.0.0.1" in log
    assert "guess" not in log and WRITE not in log


def test_read_key_reads_and_searches_but_cannot_write(server):
    picture = drawn(301)
    added = server.post("/api/v1/pictures", files={"file": ("a.png", picture)}, headers=bearer(WRITE))
    assert added.status_code == 201
    pid = added.json()["id"]
    assert server.get(f"/api/v1/pictures/{pid}", headers=bearer(READ)).status_code == 200
    assert server.get(f"/api/v1/pictures/{pid}/image", headers=bearer(READ)).status_code == 200
    found = server.post("/api/v1/search", files={"file": ("q.png", picture)}, headers=bearer(READ))
    assert found.status_code == 200 and found.json()["matches"][0]["id"] == pid
    search_job = server.post("/api/v1/jobs", files=[("file", ("q.png", picture))], data={"action": "search"},
                             headers=bearer(READ))
    assert search_job.status_code == 202
    refused = [
        server.post("/api/v1/pictures", files={"file": ("b.png", drawn(302))}, headers=bearer(READ)),
        server.request("DELETE", f"/api/v1/pictures/{pid}", headers=bearer(READ)),
        server.request("PATCH", f"/api/v1/pictures/{pid}", json={"tags": ["x"]}, headers=bearer(READ)),
        server.post("/api/v1/jobs", files=[("file", ("b.png", drawn(302)))], data={"action": "add"},
                    headers=bearer(READ)),
        server.post("/api/v1/review/" + "0" * 32, json={"verdict": "accepted"}, headers=bearer(READ)),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert server.get(f"/api/v1/pictures/{pid}", headers=bearer(WRITE)).json()["tags"] == []
    assert "this API key is read-only (403)" in server.log()


def test_write_key_does_everything(server):
    added = server.post("/api/v1/pictures", files={"file": ("c.png", drawn(303))}, headers=bearer(WRITE))
    pid = added.json()["id"]
    patched = server.request("PATCH", f"/api/v1/pictures/{pid}", json={"tags": ["t"]}, headers=bearer(WRITE))
    assert patched.status_code == 200
    assert server.request("DELETE", f"/api/v1/pictures/{pid}", headers=bearer(WRITE)).status_code == 200


def test_health_openapi_and_ui_need_no_key(server):
    for path in ("/status/live", "/status", "/api/v1/openapi.json", "/", "/ui/app.js", "/ui/app.css"):
        assert server.get(path).status_code == 200, path
    assert server.get("/status").json()["auth"] is True
    assert server.get("/ui/../app.py").status_code == 404


def test_unknown_route_is_404_even_with_auth_on(server):
    assert server.get("/api/v1/nothing", headers=bearer(READ)).status_code == 404


def test_refuses_to_bind_a_public_address_without_keys(tmp_path):
    done = run_quaid(tmp_path, "serve", "--host", "0.0.0.0", "--port", "0")
    assert done.returncode != 0
    assert "refusing to serve on 0.0.0.0 without API keys" in done.stderr
    assert not (tmp_path / "redis" / "redis.pid").exists()  # refused before starting anything


def test_public_address_with_keys_serves_and_requires_them(tmp_path):
    with ServerProcess(tmp_path, {"QUAID_WRITE_KEYS": WRITE}, args=("--host", "0.0.0.0")) as proc:
        proc.url = proc.url.replace("0.0.0.0", "127.0.0.1")
        assert proc.get("/api/v1/clusters").status_code == 401
        assert proc.get("/api/v1/clusters", headers=bearer(WRITE)).status_code == 200


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("example.org", False), ("", False),
])
def test_loopback_detection(host, loopback):
    assert is_loopback(host) is loopback


def test_keyring_grants():
    ring = KeyRing(("r",), ("w",))
    assert ring.enabled and ring.access("w") == 2 and ring.access("r") == 1 and ring.access("x") == 0
    assert ring.access("") == 0 and not KeyRing((), ()).enabled

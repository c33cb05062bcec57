"""QuaidClient and the CLI's ``--server`` mode against a real ``quaid serve`` with API keys on."""

from __future__ import annotations

import json
import socket

import pytest
from drawing import drawn, variant
from serverproc import ServerProcess, run_quaid

from engine.client import Forbidden, QuaidClient, ServiceUnreachable, Unauthorized
from engine.errors import BadInput, NotAPicture, NotFound, PictureTooLarge, StoreUnavailable
from engine.service.review import ReviewQueue
from engine.store import EmbeddedRedis

READ, WRITE = "client-read-key", "client-write-key"
LIMIT = 2_000_000  # bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"QUAID_READ_KEYS": READ, "QUAID_WRITE_KEYS": WRITE, "QUAID_MAX_UPLOAD_BYTES": str(LIMIT)}
    with ServerProcess(tmp_path_factory.mktemp("client"), env) as proc:
        yield proc


@pytest.fixture
def client(server):
    return QuaidClient(server.url, api_key=WRITE, timeout=20)


def test_add_get_update_delete(client, tmp_path):
    path = tmp_path / "page.png"
    path.write_bytes(drawn(601))
    added = client.add(path, tags=["t1"], metadata={"event": 7})
    assert added["status"] == "added" and added["name"] == "page.png"
    assert client.add(path.read_bytes(), name="again")["status"] == "duplicate"
    record = client.get(added["id"])
    assert record["tags"] == ["t1"] and record["metadata"] == {"event": 7}
    assert client.image(added["id"])[:2] == b"\xff\xd8"
    assert client.update(added["id"], tags=["t2"])["tags"] == ["t2"]
    client.delete(added["id"])
    with pytest.raises(NotFound):
        client.get(added["id"])


def test_add_folder_maps_file_names_to_ids_and_reports_bad_files(client, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.png").write_bytes(drawn(602))
    (tmp_path / "sub" / "b.jpg").write_bytes(variant(drawn(603)))
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    (tmp_path / "notes.txt").write_text("ignored: not a picture suffix")
    errors: dict[str, str] = {}
    mapping = client.add_folder(tmp_path, errors=errors)
    assert set(mapping) == {"a.png", "sub/b.jpg"}
    assert all(len(v) == 64 for v in mapping.values())
    assert set(errors) == {"broken.png"} and errors["broken.png"]
    assert client.get(mapping["a.png"])["name"] == "a.png"


def test_search_job_clusters_export(client):
    original = drawn(604, size=(1280, 800))
    added = client.add(original, name="orig.png")
    query = variant(original, scale=0.75)
    found = client.search(query, top=3)
    assert found["decision"] == "accepted" and found["matches"][0]["id"] == added["id"]
    job = client.job([query, drawn(9604)], action="search", timeout=120)
    assert job["status"] == "done"
    assert job["results"][0]["matches"][0]["id"] == added["id"]
    assert any(c["cluster"] == added["cluster"] for c in client.clusters())
    assert client.cluster(added["cluster"])["representative"]
    assert added["id"] in {n["id"] for n in client.export("graph")["nodes"]}


def test_review_verdicts_round_trip_as_labels(client, server):
    added = client.add(drawn(605), name="stored.png")
    redis = EmbeddedRedis(server.home / "redis").client()
    fake_search = {"decision": "to-review", "matches": [
        {"id": added["id"], "name": "stored.png", "distance": 0.3, "decision": "to-review",
         "algorithms": {"pdq": {"distance": 0.3, "decision": "maybe"}}}]}
    item = ReviewQueue(redis).record(drawn(606), "query.png", fake_search)[0]
    assert ReviewQueue(redis).record(drawn(606), "query.png", fake_search) == []  # no duplicate item
    pending = client.reviews()
    assert item in [i["item"] for i in pending["items"]]
    judged = client.judge(item, "rejected")
    assert judged["verdict"] == "rejected"
    assert item not in [i["item"] for i in client.reviews()["items"]]
    assert item in [i["item"] for i in client.reviews(status="done")["items"]]
    labels = [entry for entry in client.labels() if entry["match"] == added["id"]]
    assert labels and labels[0]["same"] is False and labels[0]["algorithms"]["pdq"]["distance"] == 0.3
    with pytest.raises(BadInput):
        client.judge(item, "maybe")
    with pytest.raises(NotFound):
        client.judge("f" * 32, "accepted")


def test_errors_become_exceptions(client, server):
    with pytest.raises(NotAPicture):
        client.search(b"%PDF-1.4 not a picture")
    with pytest.raises(PictureTooLarge):
        client.search(b"\0" * (LIMIT + 1))
    with pytest.raises(NotFound):
        client.get("0" * 64)
    with pytest.raises(BadInput):
        client.get("zz")
    with pytest.raises(Unauthorized):
        QuaidClient(server.url, api_key="wrong").clusters()
    with pytest.raises(Forbidden):
        QuaidClient(server.url, api_key=READ).add(drawn(607))
    assert QuaidClient(server.url, api_key=READ).search(drawn(607))["decision"] in ("accepted", "rejected")
    with pytest.raises(BadInput):
        client.add("/nonexistent/picture.png")


def test_unreachable_and_silent_services(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServiceUnreachable) as refused:
        QuaidClient(f"http://127.0.0.1:{port}", timeout=2).status()
    assert isinstance(refused.value, StoreUnavailable) and "cannot reach quaid" in str(refused.value)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with pytest.raises(ServiceUnreachable, match="no answer within"):
            QuaidClient(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5).status()


def test_cli_server_mode_gives_the_same_answers_as_the_local_store(server, tmp_path):
    picture = tmp_path / "cli.png"
    picture.write_bytes(drawn(608, size=(1024, 640)))
    query = tmp_path / "query.jpg"
    query.write_bytes(variant(picture.read_bytes(), scale=0.8))
    env = {"QUAID_API_KEY": WRITE}
    added = run_quaid(tmp_path, "add", str(picture), "--tag", "cli", "--json", "--server", server.url,
                      env=env)
    assert added.returncode == 0, added.stderr
    record = json.loads(added.stdout)
    assert record["status"] == "added"
    remote = run_quaid(tmp_path, "search", str(query), "--json", "--server", server.url, env=env)
    local = run_quaid(server.home, "search", str(query), "--json")  # same store, opened in-process
    assert remote.returncode == 0 and local.returncode == 0, remote.stderr + local.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    assert json.loads(remote.stdout)["matches"][0]["id"] == record["id"]
    denied = run_quaid(tmp_path, "add", str(picture), "--server", server.url, env={"QUAID_API_KEY": READ})
    assert denied.returncode != 0 and "read-only" in denied.stderr

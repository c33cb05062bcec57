"""``quaid_client``, the one client of quaid's API, and the CLI's ``--server`` mode.

Against a real ``quaid serve`` with API keys on: every call, the error classes of real refusals,
the CLI through the service giving the answers of the local store, and to-review matches
queued by every search path (local CLI, CLI ``--server``, API, batch job). Against a scripted
HTTP server: each status's error class, the request header, retries of a refused connection
(and never of a sent request), and the one deadline of a client with a ``budget``.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from drawing import drawn, variant
from serverproc import ServerProcess, run_quaid

from engine.review import ReviewQueue
from engine.store import EmbeddedRedis
from quaid_client import (
    AuthError,
    BadAnswer,
    QuaidClient,
    RequestRefused,
    ServiceError,
    ServiceUnavailable,
)
from tests.test_orb import site_page
from tests.test_same_template import sibling_page

READ, WRITE = "client-read-key", "client-write-key"
LIMIT = 2_000_000  # bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"QUAID_READ_KEYS": READ, "QUAID_WRITE_KEYS": WRITE, "QUAID_MAX_UPLOAD_BYTES": str(LIMIT)}
    with ServerProcess(tmp_path_factory.mktemp("client"), env) as proc:
        yield proc


@pytest.fixture
def client(server):
    with QuaidClient(server.url, api_key=WRITE, timeout=20) as quaid:
        yield quaid


def png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- against a real service ------------------------------------------------------------------

def test_hashes_search_by_hashes_and_a_hash_list(client):
    """The exchanged hashes, a search by them (to review at best) and a partner's list, through the client."""
    data = drawn(640)
    client.add(data, name="known.png")
    hashes = client.hash(data, name="known.png")["hashes"]
    assert len(hashes["pdq"]) == 64 and len(hashes["phash_dct_base64"]) == 12
    found = client.search_hashes({"phash_dct_base64": hashes["phash_dct_base64"]}, top=3)
    assert found["evidence"] == "hashes-only" and found["matches"][0]["name"] == "known.png"
    assert found["matches"][0]["decision"] == "to-review"
    imported = client.import_hashes(f"{hashes['pdq']},90,partner-copy.png\nnothex,1,x\n", "pdq-csv",
                                    tags=["partner"])
    assert (imported["added"], imported["failed"]) == (1, 1)
    assert client.get(imported["results"][0]["id"])["hash_only"] is True
    with pytest.raises(RequestRefused, match="pdq"):
        client.search_hashes({"pdq": "short"})


def test_add_get_update_delete(client):
    data = drawn(601)
    added = client.add(data, name="page.png", tags=["t1"], metadata={"event": 7})
    assert added["status"] == "added" and added["name"] == "page.png"
    assert client.add(data, name="again")["status"] == "duplicate"
    record = client.get(added["id"])
    assert record["tags"] == ["t1"] and record["metadata"] == {"event": 7}
    thumbnail, content_type = client.image(added["id"])
    assert thumbnail[:2] == b"\xff\xd8" and content_type == "image/jpeg"
    assert client.update(added["id"], tags=["t2"])["tags"] == ["t2"]
    assert client.delete(added["id"])["status"] == "deleted"
    with pytest.raises(RequestRefused) as gone:
        client.get(added["id"])
    assert gone.value.status == 404


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
    assert set(errors) == {"broken.png"} and errors["broken.png"].startswith("HTTP 415: ")
    assert client.get(mapping["a.png"])["name"] == "a.png"


def test_search_job_clusters_export(client):
    original = drawn(604, size=(1280, 800))
    added = client.add(original, name="orig.png")
    query = variant(original, scale=0.75)
    found = client.search(query, top=3)
    assert found["decision"] == "accepted" and found["matches"][0]["id"] == added["id"]
    job = client.job([("query.jpg", query), ("other.png", drawn(9604))], action="search", timeout=120)
    assert job["status"] == "done"
    assert job["results"][0]["matches"][0]["id"] == added["id"]
    assert client.matches(added["id"])["id"] == added["id"]
    assert any(c["cluster"] == added["cluster"] for c in client.clusters())
    assert client.cluster(added["cluster"])["representative"]
    copy = client.add(query, name="copy.jpg")  # joins the original's cluster, after it
    assert [m["id"] for m in client.cluster(added["cluster"], offset=1, limit=1)["members"]] == [copy["id"]]
    page = client.graph(limit=1)  # the largest cluster, cut to its representative
    [node] = page["nodes"]
    assert node["representative"] and page["cut"] == [node["cluster"]]
    assert added["id"] in {n["id"] for n in client.export("graph")["nodes"]}
    assert "/api/v1/search" in client.openapi()["paths"]


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
    assert client.review(item)["match"] == added["id"]
    judged = client.judge(item, "rejected")
    assert judged["verdict"] == "rejected"
    assert item not in [i["item"] for i in client.reviews()["items"]]
    assert item in [i["item"] for i in client.reviews(status="done")["items"]]
    labels = [entry for entry in client.labels() if entry["match"] == added["id"]]
    assert labels and labels[0]["same"] is False and labels[0]["algorithms"]["pdq"]["distance"] == 0.3
    with pytest.raises(RequestRefused) as bad:
        client.judge(item, "maybe")
    assert bad.value.status == 400
    with pytest.raises(RequestRefused) as unknown:
        client.judge("f" * 32, "accepted")
    assert unknown.value.status == 404


def test_refusals_have_their_error_class_status_and_reason(client, server):
    with pytest.raises(RequestRefused) as not_picture:
        client.search(b"%PDF-1.4 not a picture")
    assert not_picture.value.status == 415 and not not_picture.value.transient
    with pytest.raises(RequestRefused) as large:
        client.search(b"\0" * (LIMIT + 1))
    assert large.value.status == 413
    with pytest.raises(RequestRefused) as bad_id:
        client.get("zz")
    assert bad_id.value.status == 400 and bad_id.value.reason and bad_id.value.reason in str(bad_id.value)
    with pytest.raises(AuthError) as wrong:
        QuaidClient(server.url, api_key="wrong").clusters()
    assert wrong.value.status == 401
    with pytest.raises(AuthError) as read_only:
        QuaidClient(server.url, api_key=READ).add(drawn(607))
    assert read_only.value.status == 403 and "read-only" in str(read_only.value)
    assert QuaidClient(server.url, api_key=READ).search(drawn(607))["decision"] in ("accepted", "rejected")


def test_unreachable_and_silent_services():
    with pytest.raises(ServiceUnavailable) as refused:
        QuaidClient(f"http://127.0.0.1:{free_port()}", timeout=2, retries=0).status()
    assert refused.value.status is None and "unreachable" in str(refused.value)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with pytest.raises(ServiceUnavailable, match="did not answer within 0.5 s"):
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
    # The API answers the same object without "query", the file the CLI adds to each line.
    api = server.post("/api/v1/search", files={"file": ("upload.jpg", query.read_bytes())},
                      headers={"Authorization": f"Bearer {WRITE}"})
    printed = json.loads(remote.stdout)
    assert printed.pop("query") == str(query) and api.json() == printed
    denied = run_quaid(tmp_path, "add", str(picture), "--server", server.url, env={"QUAID_API_KEY": READ})
    assert denied.returncode != 0 and "read-only" in denied.stderr


def test_cli_server_mode_with_no_service_fails_in_one_line(tmp_path):
    picture = tmp_path / "cli.png"
    picture.write_bytes(drawn(609))
    url = f"http://127.0.0.1:{free_port()}"
    done = run_quaid(tmp_path, "search", str(picture), "--server", url)
    assert done.returncode != 0
    reason = f"quaid service at {url} is unreachable"
    assert done.stderr.strip().splitlines() == [f"quaid search: {picture}: {reason}"]


def test_every_search_path_queues_its_to_review_matches(client, server, tmp_path):
    """A local ``quaid search``, ``quaid search --server``, the API and a batch job: each queues the
    to-review match of a template sibling for an analyst, named after its query."""
    stored = client.add(png(site_page(41)), name="manual page")
    queries = {}
    for number, path in enumerate(("local", "remote", "api", "job"), 1):
        queries[path] = png(sibling_page(41, number))
    (tmp_path / "local.png").write_bytes(queries["local"])
    (tmp_path / "remote.png").write_bytes(queries["remote"])
    local = run_quaid(server.home, "search", str(tmp_path / "local.png"), "--json")
    remote = run_quaid(tmp_path, "search", str(tmp_path / "remote.png"), "--json", "--server", server.url,
                       env={"QUAID_API_KEY": WRITE})
    api = client.search(queries["api"], name="api.png")
    job = client.job([("job.png", queries["job"])], action="search", timeout=120)["results"][0]
    answers = [json.loads(local.stdout), json.loads(remote.stdout), api, job]
    for answer in answers:  # the premise: each search answers the stored page as to-review
        assert answer["matches"][0]["id"] == stored["id"] and answer["decision"] == "to-review", answer
    pending = [i for i in client.reviews(limit=500)["items"] if i["match"] == stored["id"]]
    assert sorted(i["query_name"] for i in pending) == sorted(
        [str(tmp_path / "local.png"), str(tmp_path / "remote.png"), "api.png", "job.png"])


# --- against a scripted HTTP server ------------------------------------------------------------

class Scripted(BaseHTTPRequestHandler):
    """Answers each request with the next (status, body, delay) of ``server.script``; records headers."""

    def _answer(self) -> None:
        self.server.seen.append(dict(self.headers))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body, delay = self.server.script.pop(0)
        time.sleep(delay)
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def scripted():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    server.script, server.seen = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("status", "body", "error", "transient"), [
    (401, '{"error": "missing API key"}', AuthError, False),
    (403, '{"error": "read-only key"}', AuthError, False),
    (415, '{"error": "not a picture"}', RequestRefused, False),
    (413, '{"error": "too large"}', RequestRefused, False),
    (429, '{"error": "slow down"}', ServiceUnavailable, True),
    (503, '{"error": "store unavailable"}', ServiceUnavailable, True),
    (500, "<html>proxy error</html>", ServiceUnavailable, True),
    (200, "<html>a captive portal</html>", BadAnswer, False),
])
def test_each_status_has_its_error_class(scripted, status, body, error, transient):
    scripted.script.append((status, body, 0))
    with pytest.raises(error) as err:
        QuaidClient(f"http://127.0.0.1:{scripted.server_port}").search(b"x")
    assert isinstance(err.value, ServiceError) and err.value.transient is transient
    assert err.value.status == status and "\n" not in str(err.value)
    if body.startswith("{"):
        assert json.loads(body)["error"] in str(err.value)


def test_client_sends_the_request_header_and_key_and_times_out(scripted):
    scripted.script += [(200, '{"id": "x", "status": "added"}', 0), (200, "{}", 2.0)]
    client = QuaidClient(f"http://127.0.0.1:{scripted.server_port}", api_key="k", timeout=(1.0, 0.5))
    assert client.add(b"x", name="image::x")["status"] == "added"
    assert scripted.seen[0]["X-Quaid-Request"] == "1" and scripted.seen[0]["Authorization"] == "Bearer k"
    with pytest.raises(ServiceUnavailable, match="did not answer within"):
        client.search(b"x")


def test_a_refused_connection_is_retried_until_the_service_listens():
    """The service restarting: connections refused for a moment, then served."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        QuaidClient(url, retries=0).status()  # the premise: nothing listens there yet
    started = []

    def listen_soon() -> None:
        time.sleep(0.3)
        server = ThreadingHTTPServer(("127.0.0.1", port), Scripted)
        server.script, server.seen = [(200, '{"status": "ready"}', 0)], []
        started.append(server)
        server.serve_forever()

    threading.Thread(target=listen_soon, daemon=True).start()
    try:
        assert QuaidClient(url, retries=5, backoff=0.5).status() == {"status": "ready"}
    finally:
        for server in started:
            server.shutdown()
            server.server_close()


def test_a_sent_request_is_never_resent(scripted):
    """A 503 or a timeout after the request went out: the caller decides whether to repeat it."""
    scripted.script += [(503, '{"error": "busy"}', 0), (200, "{}", 2.0)]
    client = QuaidClient(f"http://127.0.0.1:{scripted.server_port}", timeout=(1.0, 0.5), retries=5)
    with pytest.raises(ServiceUnavailable):
        client.add(b"x")
    with pytest.raises(ServiceUnavailable, match="did not answer within 0.5 s"):
        client.status()  # a GET, which urllib3 would otherwise retry after a read timeout
    time.sleep(2.0)  # what a resent request would have reached by now
    assert len(scripted.seen) == 2


def test_a_budget_is_one_deadline_for_all_calls(scripted):
    """With ``budget`` each call gets the time left, and none starts once it is spent (MISP waits
    10 s for a module's whole answer, however many calls it makes)."""
    scripted.script += [(200, "{}", 3.0)]
    client = QuaidClient(f"http://127.0.0.1:{scripted.server_port}", timeout=(5.0, 30.0), budget=0.5)
    with pytest.raises(ServiceUnavailable, match="did not answer within 0.5 s"):
        client.search(b"x")  # its read timeout is cut from 30 s to what is left of 0.5 s
    with pytest.raises(ServiceUnavailable, match="did not answer within 0.5 s"):
        client.add(b"y")  # never sent: the deadline has passed
    assert len(scripted.seen) == 1 and client.left() < 0

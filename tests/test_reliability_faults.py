"""Faults: kill -9 of the service mid-write, Redis dying under it, Redis absent at start.

test_jobs.py kills a service once during a job and checks the job resumes; test_api.py
stops an external Redis and checks 503 then recovery. Added here:

* the service killed twice while a batch job *and* synchronous adds run: right after each
  kill, every picture is either fully stored (record, features, codes, thumbnail) or
  absent — never half-written — every add answered 201 is there, and after the restarts
  the job finishes with every picture stored once, findable, in exactly one cluster;
* Redis stopped under a running service: 503 with a clear message on every endpoint
  (reads, search, add, jobs, clusters, status) meanwhile, the job workers survive, and
  once Redis is back the service recovers by itself with nothing stored lost or changed;
* the *embedded* Redis (the default deployment, which has no supervisor) killed with
  SIGKILL: the service starts it again by itself from its append-only file;
* Redis unreachable at start: ``quaid stats``, ``add`` and ``search`` print one line and
  exit non-zero (``quaid serve`` is covered in test_api.py).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from drawing import drawn
from reliability_support import store_snapshot, stored_state
from serverproc import CLIENT_HEADER, ServerProcess, run_quaid

from engine.store import EmbeddedRedis

JOB_FILES = 30
KILLS = 2


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def job_state(server: ServerProcess, job: str) -> dict:
    return server.get(f"/api/v1/jobs/{job}").json()


def no_partial_pictures(home: Path, ids: set[str]) -> Counter:
    """Open the store the dead service left (as the next start does) and classify each picture."""
    redis_server = EmbeddedRedis(home / "redis")
    client = redis_server.acquire()
    try:
        states = Counter(stored_state(client, ident) for ident in ids)
    finally:
        client.close()
    assert states["partial"] == 0, states
    return states


class SyncAdder(threading.Thread):
    """Adds pictures one by one until the service dies; remembers which were answered 201."""

    def __init__(self, url: str, seeds: range) -> None:
        super().__init__(daemon=True)
        self.url, self.seeds = url, seeds
        self.confirmed: set[str] = set()
        self.sent: set[str] = set()

    def run(self) -> None:
        for seed in self.seeds:
            data = drawn(seed, size=(800, 600))
            self.sent.add(hashlib.sha256(data).hexdigest())
            try:
                response = requests.post(f"{self.url}/api/v1/pictures", files={"file": ("s.png", data)},
                                         headers={CLIENT_HEADER: "1"}, timeout=30)
            except requests.RequestException:
                return
            if response.status_code == 201:
                self.confirmed.add(response.json()["id"])


def test_kill_9_mid_write_leaves_each_picture_whole_or_absent_and_the_job_completes(tmp_path):
    pictures = [drawn(7000 + i, size=(1024, 700)) for i in range(JOB_FILES)]
    job_ids = {hashlib.sha256(p).hexdigest() for p in pictures}
    args = ("--claim-after", "2", "--threads", "4")
    server = ServerProcess(tmp_path, workers=1, args=args).start()
    job = server.post("/api/v1/jobs", files=[("file", (f"j{i}.png", p)) for i, p in enumerate(pictures)],
                      data={"action": "add"}).json()["job"]
    sync_ids, confirmed = set(), set()
    for kill in range(KILLS):
        adder = SyncAdder(server.url, range(7100 + 100 * kill, 7100 + 100 * kill + 40))
        adder.start()
        floor = job_state(server, job)["done"] + 3
        wait_for(lambda s=server, f=floor: job_state(s, job)["done"] >= f, 180, f"{floor} files done")
        time.sleep(0.1 * kill)  # another moment in the write cycle
        server.kill()
        adder.join(timeout=60)
        sync_ids |= adder.sent
        confirmed |= adder.confirmed
        states = no_partial_pictures(tmp_path, job_ids | sync_ids)
        assert states["full"] >= len(confirmed)
        server = ServerProcess(tmp_path, workers=1, args=args).start()
    try:
        state = wait_for(lambda: (s := job_state(server, job))["status"] in ("done", "failed") and s,
                         300, "the job to finish")
        assert state["status"] == "done" and state["attempts"] == KILLS + 1, state
        assert [r["status"] for r in state["results"]].count("error") == 0
        assert {r["id"] for r in state["results"]} == job_ids
        client = EmbeddedRedis(tmp_path / "redis").client()
        try:
            states = {ident: stored_state(client, ident) for ident in job_ids | sync_ids}
        finally:
            client.close()
        assert set(states.values()) <= {"full", "absent"}
        assert all(states[i] == "full" for i in job_ids | confirmed)
        stored = {i for i, s in states.items() if s == "full"}
        exported = server.get("/api/v1/export").json()
        assert {p["id"] for p in exported["pictures"]} == stored
        listed = Counter(m for c in exported["clusters"] for m in c["members"])
        assert set(listed) == stored and set(listed.values()) == {1}
        for data in pictures[:: max(1, JOB_FILES // 6)]:
            found = server.post("/api/v1/search", files={"file": ("q.png", data)}).json()
            assert found["matches"][0]["id"] == hashlib.sha256(data).hexdigest()
            assert found["decision"] == "accepted"
    finally:
        server.stop()
        EmbeddedRedis(tmp_path / "redis").stop()


def outage_answers(server: ServerProcess, picture_id: str) -> list[requests.Response]:
    """One request to each kind of endpoint while the store is down."""
    return [server.get("/status"), server.get(f"/api/v1/pictures/{picture_id}"),
            server.post("/api/v1/search", files={"file": ("q.png", drawn(7500))}),
            server.post("/api/v1/pictures", files={"file": ("n.png", drawn(7600))}),
            server.post("/api/v1/jobs", files=[("file", ("j.png", drawn(7601)))], data={"action": "add"}),
            server.get("/api/v1/clusters")]


def assert_recovered(server: ServerProcess, client, ids: list[str], before: dict) -> None:
    found = server.post("/api/v1/search", files={"file": ("q.png", drawn(7501))}).json()
    assert found["matches"][0]["id"] == ids[1]
    assert store_snapshot(client) == before  # nothing lost or changed
    job = server.post("/api/v1/jobs", files=[("file", ("j.png", drawn(7602)))], data={"action": "add"})
    assert job.status_code == 202
    done = wait_for(lambda: (s := job_state(server, job.json()["job"]))["status"] == "done" and s, 60,
                    "a job after the recovery")  # the job workers lived through the outage
    assert done["results"][0]["status"] == "added"


def add_and_snapshot(server: ServerProcess, client) -> tuple[list[str], dict]:
    ids = [server.post("/api/v1/pictures", files={"file": (f"{i}.png", drawn(7500 + i))}).json()["id"]
           for i in range(4)]
    time.sleep(1.5)  # appendfsync everysec: what was answered more than a second ago is on disk
    return ids, store_snapshot(client)


def test_redis_down_under_the_service_gives_503_everywhere_then_recovers(tmp_path):
    redis_server = EmbeddedRedis(tmp_path / "external-redis")  # stands for an external, supervised Redis
    client = redis_server.acquire()
    try:
        with ServerProcess(tmp_path / "home", {"QUAID_REDIS_URL": redis_server.url}, workers=2) as server:
            ids, before = add_and_snapshot(server, client)
            redis_server.stop()
            for response in outage_answers(server, ids[0]):
                assert response.status_code == 503, (response.request.url, response.text)
                assert response.json()["error"].startswith("store unavailable")
                assert "\n" not in response.json()["error"]
            assert server.get("/status/live").status_code == 200 and server.process.poll() is None
            time.sleep(2.5)  # the job workers retry meanwhile
            client = redis_server.acquire()  # its supervisor restarts it
            wait_for(lambda: server.get("/status").status_code == 200, 30, "the service to recover")
            assert_recovered(server, client, ids, before)
        assert "unexpected error" not in server.log()  # every failure was a handled 503, never a 500
    finally:
        redis_server.stop()


def test_embedded_redis_killed_under_the_service_is_restarted_by_it(tmp_path):
    redis_server = EmbeddedRedis(tmp_path / "redis")
    try:
        with ServerProcess(tmp_path, workers=2) as server:
            client = redis_server.client()
            ids, before = add_and_snapshot(server, client)
            client.close()
            pid = int(redis_server.pid_path.read_text())
            os.kill(pid, signal.SIGKILL)  # a crash or the OOM killer: nobody else will restart it
            wait_for(lambda: not _alive(pid), 10, "redis-server to die")
            first = server.get(f"/api/v1/pictures/{ids[0]}")
            assert first.status_code == 503 and first.json()["error"].startswith("store unavailable")
            wait_for(lambda: server.get("/status").status_code == 200, 30, "the service to restart Redis")
            assert int(redis_server.pid_path.read_text()) != pid
            client = redis_server.client()
            assert_recovered(server, client, ids, before)
            client.close()
            assert "started it again" in server.log()
        assert "unexpected error" not in server.log()
    finally:
        redis_server.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of nobody we know still answers kill 0: look at its state
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("command", [("stats",), ("add", "x.png"), ("search", "x.png")])
def test_unreachable_redis_at_start_is_one_line_and_a_failing_exit_code(tmp_path, command):
    (tmp_path / "x.png").write_bytes(drawn(7700))
    url = f"redis://127.0.0.1:{closed_port()}/0"
    done = run_quaid(tmp_path, *[str(tmp_path / a) if a.endswith(".png") else a for a in command],
                     env={"QUAID_REDIS_URL": url})
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"quaid {command[0]}: cannot reach Redis at {url}")
    assert not (tmp_path / "redis").exists()  # no embedded server started behind the user's back

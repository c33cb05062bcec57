"""Batch jobs: through a real ``quaid serve`` (add and search jobs, kill -9 mid-job then resume),
and the queue and worker alone on the real test Redis (TTL, poison jobs, prompt pick-up).
"""

from __future__ import annotations

import threading
import time

import pytest
from drawing import drawn, variant
from serverproc import ServerProcess

from engine.errors import BadInput, NotFound
from engine.service.jobs import MAX_ATTEMPTS, JobFile, JobQueue, Worker, ensure_group
from engine.store import keys

pytestmark = pytest.mark.cluster  # tests on the `redis` fixture also run on a Redis Cluster


def wait_job(server, job: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = server.get(f"/api/v1/jobs/{job}").json()
        if state["status"] in ("done", "failed"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"job {job} not finished: {state}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("jobs"), workers=2) as proc:
        yield proc


def test_add_job_then_search_job(server):
    files = [("file", (f"p{i}.png", drawn(400 + i))) for i in range(3)] + [("file", ("bad.png", b"<html>"))]
    submitted = server.post("/api/v1/jobs", files=files, data={"action": "add", "tags": ["batch"]})
    assert submitted.status_code == 202
    assert submitted.headers["Location"].endswith(submitted.json()["job"])
    state = wait_job(server, submitted.json()["job"])
    assert state["status"] == "done" and state["total"] == 4 and state["done"] == 4
    results = state["results"]
    assert [r["file"] for r in results] == ["p0.png", "p1.png", "p2.png", "bad.png"]
    assert [r["status"] for r in results] == ["added", "added", "added", "error"]
    assert results[3]["error"]
    record = server.get(f"/api/v1/pictures/{results[0]['id']}").json()
    assert record["tags"] == ["batch"] and record["name"] == "p0.png"

    queries = [("file", (f"q{i}.jpg", variant(drawn(400 + i), scale=0.8))) for i in range(3)]
    submitted = server.post("/api/v1/jobs", files=queries, data={"action": "search"})
    searched = wait_job(server, submitted.json()["job"])
    assert searched["action"] == "search"
    for result, added in zip(searched["results"], results[:3], strict=True):
        assert result["decision"] == "accepted" and result["matches"][0]["id"] == added["id"]


def test_job_requests_are_checked(server):
    one = [("file", ("a.png", drawn(410)))]
    assert server.post("/api/v1/jobs", files=one).status_code == 400  # no action
    assert server.post("/api/v1/jobs", files=one, data={"action": "delete"}).status_code == 400
    assert server.post("/api/v1/jobs", data={"action": "add"}, files={"x": ("a", b"1")}).status_code == 400
    assert server.get("/api/v1/jobs/not-a-job").status_code == 404


def test_kill_9_during_a_job_then_restart_resumes_it_and_stores_each_picture_once(tmp_path):
    pictures = [drawn(500 + i, size=(1280, 800)) for i in range(24)]
    first = ServerProcess(tmp_path, workers=1, args=("--claim-after", "2")).start()
    try:
        job = first.post("/api/v1/jobs", files=[("file", (f"k{i}.png", p)) for i, p in enumerate(pictures)],
                         data={"action": "add"}).json()["job"]
        deadline = time.monotonic() + 120
        while first.get(f"/api/v1/jobs/{job}").json()["done"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.kill()
    finally:
        first.kill()
    with ServerProcess(tmp_path, workers=1, args=("--claim-after", "2")) as second:
        state = second.get(f"/api/v1/jobs/{job}").json()
        assert state["status"] in ("queued", "running") and 3 <= state["done"] < 24
        state = wait_job(second, job)
        assert state["status"] == "done" and state["attempts"] == 2
        assert [r["file"] for r in state["results"]] == [f"k{i}.png" for i in range(24)]
        assert {r["status"] for r in state["results"]} <= {"added", "duplicate"}
        ids = {r["id"] for r in state["results"]}
        assert len(ids) == 24
        assert second.get("/status").json()["stats"]["pictures"] == 24
        for picture_id in ids:
            assert second.get(f"/api/v1/pictures/{picture_id}").status_code == 200


# --- queue and worker on the test Redis (no engine) -----------------------------------------

def run_worker(redis, handle, **kwargs) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    worker = Worker(redis, handle, stop, **kwargs)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return stop, thread


def wait_status(queue: JobQueue, job: str, wanted: set[str], timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = queue.status(job)
        if state["status"] in wanted:
            return state
        time.sleep(0.02)
    raise AssertionError(state)


def test_job_keys_expire_and_files_are_dropped_when_done(redis):
    queue = JobQueue(redis, ttl=600)
    job = queue.submit("search", [JobFile("a", b"1"), JobFile("b", b"2")])
    assert 0 < redis.ttl(keys.job(job)) <= 600 and 0 < redis.ttl(keys.job_files(job)) <= 600
    stop, thread = run_worker(redis, lambda action, data, name, options: {"echo": data.decode()}, block=0.2)
    try:
        state = wait_status(queue, job, {"done"})
    finally:
        stop.set()
        thread.join(5)
    assert [r["echo"] for r in state["results"]] == ["1", "2"]
    assert not redis.exists(keys.job_files(job))
    assert redis.ttl(keys.job_results(job)) > 0
    assert redis.xpending(keys.JOB_STREAM, keys.JOB_GROUP)["pending"] == 0


def test_a_blocked_worker_wakes_at_once_for_a_new_job(redis):
    ensure_group(redis)
    picked = threading.Event()
    stop, thread = run_worker(redis, lambda *a: picked.set() or {}, block=10.0)
    try:
        time.sleep(0.3)  # the worker is now inside XREADGROUP BLOCK 10000
        started = time.monotonic()
        JobQueue(redis).submit("add", [JobFile("a", b"1")])
        assert picked.wait(5)
        assert time.monotonic() - started < 1.0
    finally:
        stop.set()
        thread.join(15)


def test_a_poison_job_is_failed_after_max_attempts(redis):
    calls = []

    def crash(action, data, name, options):
        calls.append(name)
        raise RuntimeError("decoder crashed")

    queue = JobQueue(redis)
    job = queue.submit("add", [JobFile("poison", b"x")])
    stop, thread = run_worker(redis, crash, claim_idle=0.05, block=0.1)
    try:
        state = wait_status(queue, job, {"failed"}, timeout=30)
    finally:
        stop.set()
        thread.join(5)
    assert len(calls) == MAX_ATTEMPTS and "attempts" in state["error"]
    assert state["results"] == []


def test_unknown_job_and_bad_submissions(redis):
    queue = JobQueue(redis)
    with pytest.raises(NotFound):
        queue.status("0" * 32)
    with pytest.raises(BadInput):
        queue.submit("delete", [JobFile("a", b"1")])
    with pytest.raises(BadInput):
        queue.submit("add", [])

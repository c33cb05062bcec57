"""quaid on a real Redis Cluster: URLs, the review queue, two services, a master killed.

The store and job tests run on a cluster too (``@pytest.mark.cluster`` in test_store.py and
test_jobs.py, see conftest.py). Here, on a 3-master + 3-replica cluster of Debian
``redis-server`` processes (tests/cluster_fixture.py) with ``?wait=1`` on the URL:

* two ``quaid serve`` processes share it: the second rebuilds its index from the cluster
  at start (logged), an addition through one is found through the other, and a deletion
  through one disappears from the other — the delay is measured and bounded;
* one master is SIGKILLed while pictures are added through one service and a batch job
  runs on the other: the service answers 503 (never 500) meanwhile, the replica takes
  over, and once the killed node is back every add that was answered 201 is stored
  (record, features, codes) and findable through both services; the job finishes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter

import pytest
from drawing import drawn, variant
from redis.cluster import RedisCluster
from serverproc import ServerProcess

from engine.review import ReviewQueue
from engine.store import keys
from engine.store.cluster import parse_cluster_url, used_memory
from tests.cluster_fixture import LocalCluster, all_keys

SYNC_BOUND = 2.0  # seconds: an addition/deletion through one service is visible through another within this
RECOVERY_BOUND = 60.0  # seconds from the kill until every add is acknowledged again


def test_cluster_url_lists_seed_nodes_and_options():
    nodes, options = parse_cluster_url("redis+cluster://u:secret@10.0.0.1:7000,10.0.0.2,[::1]:7002/?wait=1")
    assert [(n.host, n.port) for n in nodes] == [("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002)]
    assert options == {"wait": "1", "username": "u", "password": "secret"}
    with pytest.raises(ValueError):
        parse_cluster_url("redis://localhost:6379")


@pytest.mark.cluster
def test_review_queue_on_both_backends(redis):
    queue = ReviewQueue(redis)
    result = {"matches": [{"id": "a" * 64, "decision": "to-review", "distance": 0.3, "name": "m"},
                          {"id": "b" * 64, "decision": "accepted", "distance": 0.0}]}
    [item] = queue.record(drawn(1), "query.png", result)
    assert queue.record(drawn(1), "query.png", result) == []  # recorded once
    assert queue.items()["total"] == 1
    queue.judge(item, "accepted")
    assert queue.items("done")["total"] == 1 and queue.items()["total"] == 0
    assert used_memory(redis) > 0


# --- two services sharing a 3-master + 3-replica cluster -----------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), masters=3, replicas=1)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def service(cluster: LocalCluster, home, **kwargs) -> ServerProcess:
    env = {"QUAID_REDIS_URL": cluster.url + "?wait=1"}
    return ServerProcess(home, env, args=("--claim-after", "3"), **kwargs)


def add(server: ServerProcess, data: bytes, name: str = ""):
    return server.post("/api/v1/pictures", files={"file": (name or "p.png", data)}, data={"name": name})


def found(server: ServerProcess, data: bytes) -> list[str]:
    answer = server.post("/api/v1/search", files={"file": ("q.png", data)})
    assert answer.status_code == 200, answer.text
    return [m["id"] for m in answer.json()["matches"]]


def visible_after(check, bound: float) -> tuple[float, int]:
    """Seconds until ``check()`` is true, and how many checks it took; fails past ``bound``."""
    started, checks = time.monotonic(), 1
    while not check():
        if time.monotonic() - started > bound:
            raise AssertionError(f"not visible within {bound} s")
        time.sleep(0.01)
        checks += 1
    return time.monotonic() - started, checks


def test_two_services_share_one_cluster(cluster, tmp_path):
    cluster.flush()
    with service(cluster, tmp_path / "a") as first:
        ids = [add(first, drawn(seed)).json()["id"] for seed in range(30, 42)]
        assert len(set(ids)) == 12
        with service(cluster, tmp_path / "b") as second:
            assert "index rebuilt: 12 pictures" in second.log()  # rebuilt from every primary's SCAN
            assert second.get("/status").json()["stats"]["pictures"] == 12
            answer = add(first, drawn(50), "new")
            assert answer.status_code == 201
            new = answer.json()["id"]
            added_delay, checks = visible_after(lambda: new in found(second, variant(drawn(50))), SYNC_BOUND)
            assert checks == 1  # the other service syncs from the change stream before every search
            assert second.get(f"/api/v1/pictures/{new}").json()["name"] == "new"
            assert second.request("DELETE", f"/api/v1/pictures/{new}").status_code in (200, 204)
            deleted_delay, checks = visible_after(lambda: new not in found(first, variant(drawn(50))),
                                                  SYNC_BOUND)
            assert checks == 1
            job = second.post("/api/v1/jobs", data={"action": "add"},
                              files=[("file", (f"j{s}.png", drawn(s))) for s in range(60, 64)]).json()["job"]
            state = wait_job(first, job, 90)
            assert [r["status"] for r in state["results"]] == ["added"] * 4
            for seed in range(60, 64):
                assert hashlib.sha256(drawn(seed)).hexdigest() in found(first, variant(drawn(seed)))
    print(f"\nvisible through the other service at its first search: add {added_delay * 1000:.0f} ms, "
          f"delete {deleted_delay * 1000:.0f} ms after the answer (one search's duration)")


def wait_job(server: ServerProcess, job: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = server.get(f"/api/v1/jobs/{job}")
        if answer.status_code == 200 and answer.json()["status"] in ("done", "failed"):
            return answer.json()
        time.sleep(0.2)
    raise AssertionError(f"job {job} did not finish in {timeout} s")


# --- a master killed during a batch ---------------------------------------------------------

class Adder(threading.Thread):
    """Adds pictures one by one through a service, retrying each until it is answered 201."""

    def __init__(self, server: ServerProcess, seeds: range, deadline: float) -> None:
        super().__init__(daemon=True)
        self.server, self.seeds, self.deadline = server, seeds, deadline
        self.statuses: Counter = Counter()
        self.acknowledged: dict[str, float] = {}  # id -> time the 201 arrived
        self.errors: list[str] = []
        self.answers: list[tuple[float, int]] = []  # (time, status) of every attempt

    def run(self) -> None:
        for seed in self.seeds:
            while time.monotonic() < self.deadline:
                try:
                    answer = add(self.server, drawn(seed), f"s{seed}")
                except OSError as exc:  # requests' ConnectionError is an OSError
                    self.statuses["no answer"] += 1
                    self.errors.append(str(exc))
                    continue
                self.statuses[answer.status_code] += 1
                self.answers.append((time.monotonic(), answer.status_code))
                if answer.status_code in (200, 201):
                    self.acknowledged[answer.json()["id"]] = time.monotonic()
                    break
                self.errors.append(answer.text)
                time.sleep(0.2)


def test_killing_a_master_during_adds_and_a_job_loses_nothing_acknowledged(cluster, tmp_path):
    cluster.flush()
    with service(cluster, tmp_path / "a", workers=1) as first, \
            service(cluster, tmp_path / "b", workers=1) as second:
        adder = Adder(first, range(100, 140), time.monotonic() + 3 * RECOVERY_BOUND)
        adder.start()
        job = second.post("/api/v1/jobs", data={"action": "add"},
                          files=[("file", (f"j{s}.png", drawn(s))) for s in range(200, 215)]).json()["job"]
        visible_after(lambda: len(adder.acknowledged) >= 8, 60)
        victim = cluster.node_of(keys.CHANGES)  # the stream's master: every add and search needs it
        killed_at = time.monotonic()
        cluster.kill(victim)
        visible_after(lambda: first.get("/status").status_code == 503 or adder.statuses[503] > 0, 10)
        time.sleep(2 * 1.5)  # two node timeouts: the replica is promoted meanwhile
        cluster.restart(victim)  # it rejoins as the new master's replica, so WAIT 1 succeeds again
        restarted = time.monotonic()
        cluster.wait_ok()
        adder.join(3 * RECOVERY_BOUND)
        first_503 = min(t for t, status in adder.answers if status == 503)
        back = min(t for t, status in adder.answers if status == 201 and t > first_503)
        state = wait_job(second, job, 120)
        assert len(adder.acknowledged) == 40, (adder.statuses, adder.errors[-3:])
        assert all("store unavailable" in e for e in adder.errors), adder.errors
        assert adder.statuses[503] > 0 and set(adder.statuses) <= {200, 201, 503}, adder.statuses
        assert state["status"] == "done" and len(state["results"]) == 15
        assert {r["status"] for r in state["results"]} <= {"added", "duplicate"}
        client = cluster.client()
        for ident in adder.acknowledged:  # every acknowledged add, whole, in the cluster
            assert all(client.exists(k) for k in keys.picture_keys(ident)[:3]), ident
        stored = {keys.id_of(k) for k in all_keys(client, keys.PICTURE_PATTERN)}
        job_ids = {hashlib.sha256(drawn(s)).hexdigest() for s in range(200, 215)}
        assert stored == set(adder.acknowledged) | job_ids
        for seed in (100, 120, 139):
            ident = hashlib.sha256(drawn(seed)).hexdigest()
            for server in (first, second):
                assert ident in found(server, variant(drawn(seed)))
        assert second.get("/status").json()["stats"]["pictures"] == 55
        assert isinstance(client, RedisCluster)
    print(f"\nmaster killed: answers {dict(adder.statuses)}; first 503 {first_503 - killed_at:.1f} s after "
          f"the kill, adds answered 201 again {back - killed_at:.1f} s after it (replica promoted, killed "
          f"node restarted {restarted - killed_at:.1f} s after the kill and resynced); "
          f"job {state['status']} after {state['attempts']} attempts")

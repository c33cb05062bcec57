"""Concurrent clients against ONE ``quaid serve`` process: nothing lost, nothing twice.

8 client threads add 2 000 distinct small pictures (``QUAID_RELIABILITY_PICTURES`` changes
the count) while 4 others search; on top of that all 8 adders send the same 40 pictures
at the same moment (a barrier per picture), as MISP and AIL do when one attachment
arrives through several events. The service runs with 8 request threads on loopback,
with its embedded Redis. Afterwards:

* each of the 40 contested pictures was answered "added" (201) exactly once;
* every picture is stored exactly once and fully (record, features, codes, thumbnail);
* every picture is in exactly one cluster, and the cluster its record names is the one
  that lists it — in the service's memory, in Redis, and in a freshly rebuilt index;
* searching with a stored picture finds it as the top, accepted match (checked for every
  search made during the run, and for a sample of 300 plus the contested ones after it);
* no request failed.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter

import pytest
import requests
from reliability_support import distinct_picture, stored_state
from serverproc import CLIENT_HEADER, ServerProcess

from engine.config import load_settings
from engine.core import Quaid
from engine.store import EmbeddedRedis

PICTURES = int(os.environ.get("QUAID_RELIABILITY_PICTURES", "2000"))
CONTESTED = 40  # pictures every adder sends at the same moment
ADDERS, SEARCHERS = 8, 4
CHECKED_AFTER = 300  # pictures searched again once all adds are done


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("reliability-concurrency")
    with ServerProcess(home, args=("--threads", "8", "--workers", "2")) as proc:
        yield proc
    EmbeddedRedis(home / "redis").stop()


class Run:
    """What the client threads saw: ids added, answers to contested adds, failures."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.added: dict[str, bytes] = {}  # id -> bytes, once the service confirmed the add
        self.contested_status: Counter[tuple[str, int]] = Counter()
        self.failures: list[str] = []
        self.searches = 0
        self.done = threading.Event()

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)


def add(session: requests.Session, url: str, data: bytes, name: str) -> requests.Response:
    return session.post(f"{url}/api/v1/pictures", files={"file": (name, data)}, data={"name": name},
                        timeout=120)


def adder(url: str, run: Run, own: list[int], contested: list[bytes], barrier: threading.Barrier,
          index: int) -> None:
    session = requests.Session()
    session.headers[CLIENT_HEADER] = "1"
    plan = [("own", seed) for seed in own]
    for n in reversed(range(len(contested))):  # same order in every adder, spread over the run
        plan.insert(len(own) * (n + 1) // (len(contested) + 1), ("contested", n))
    for kind, number in plan:
        if kind == "contested":
            try:
                barrier.wait(timeout=300)  # every adder sends this picture at the same moment
            except threading.BrokenBarrierError:
                run.fail("barrier broken")
                return
            data = contested[number]
        else:
            data = distinct_picture(number)
        try:
            response = add(session, url, data, f"{kind}-{number}.png")
        except requests.RequestException as exc:
            run.fail(f"add {kind} {number}: {exc}")
            continue
        if response.status_code not in (200, 201):
            run.fail(f"add {kind} {number}: {response.status_code} {response.text[:200]}")
            continue
        ident = response.json()["id"]
        with run.lock:
            run.added[ident] = data
            if kind == "contested":
                run.contested_status[(ident, response.status_code)] += 1


def searcher(url: str, run: Run, seed: int) -> None:
    session = requests.Session()
    session.headers[CLIENT_HEADER] = "1"
    rng = random.Random(seed)
    while not run.done.is_set():
        with run.lock:
            known = list(run.added.items())
        if not known:
            time.sleep(0.05)
            continue
        ident, data = rng.choice(known)  # confirmed stored before this search starts
        check_found(session, url, run, ident, data)
        with run.lock:
            run.searches += 1


def check_found(session: requests.Session, url: str, run: Run, ident: str, data: bytes) -> None:
    try:
        response = session.post(f"{url}/api/v1/search", files={"file": ("q.png", data)}, timeout=120)
    except requests.RequestException as exc:
        run.fail(f"search {ident[:12]}: {exc}")
        return
    if response.status_code != 200:
        run.fail(f"search {ident[:12]}: {response.status_code} {response.text[:200]}")
        return
    answer = response.json()
    top = answer["matches"][0] if answer["matches"] else {}
    if answer["decision"] != "accepted" or top.get("id") != ident or top.get("distance") != 0:
        run.fail(f"search {ident[:12]}: top match {top.get('id', 'none')[:12]} {answer['decision']}")


def test_concurrent_adds_and_searches_lose_nothing_and_store_nothing_twice(server):
    seeds = list(range(100_000, 100_000 + PICTURES - CONTESTED))
    contested = [distinct_picture(seed) for seed in range(200_000, 200_000 + CONTESTED)]
    run = Run()
    barrier = threading.Barrier(ADDERS)
    adders = [threading.Thread(target=adder, args=(server.url, run, seeds[n::ADDERS], contested, barrier, n))
              for n in range(ADDERS)]
    searchers = [threading.Thread(target=searcher, args=(server.url, run, n)) for n in range(SEARCHERS)]
    started = time.monotonic()
    for thread in adders + searchers:
        thread.start()
    for thread in adders:
        thread.join(timeout=1800)
    run.done.set()
    for thread in searchers:
        thread.join(timeout=300)
    elapsed = time.monotonic() - started
    print(f"\n{PICTURES} pictures added by {ADDERS} clients with {run.searches} searches by {SEARCHERS} "
          f"in {elapsed:.0f} s ({PICTURES / elapsed:.1f} adds/s)")
    assert not any(t.is_alive() for t in adders + searchers)
    assert run.failures == [], run.failures[:10]
    assert run.searches > 0

    # contested pictures: one 201 each, seven 200 "duplicate"
    contested_ids = {ident for ident, _ in run.contested_status}
    assert len(contested_ids) == CONTESTED
    for ident in contested_ids:
        assert run.contested_status[(ident, 201)] == 1, ident
        assert run.contested_status[(ident, 200)] == ADDERS - 1, ident
    assert len(run.added) == PICTURES

    check_store(server, run)
    session = requests.Session()
    session.headers[CLIENT_HEADER] = "1"
    sample = random.Random(1).sample(sorted(run.added), min(CHECKED_AFTER, PICTURES)) + sorted(contested_ids)
    for ident in sample:
        check_found(session, server.url, run, ident, run.added[ident])
    assert run.failures == [], run.failures[:10]


def check_store(server: ServerProcess, run: Run) -> None:
    """Stored once and fully; one cluster each; record, service memory and a rebuilt index agree."""
    assert server.get("/status").json()["stats"]["pictures"] == PICTURES
    exported = server.get("/api/v1/export").json()
    ids = [p["id"] for p in exported["pictures"]]
    assert len(ids) == len(set(ids)) == PICTURES and set(ids) == set(run.added)
    record_cluster = {p["id"]: p["cluster"] for p in exported["pictures"]}
    listed = Counter(member for c in exported["clusters"] for member in c["members"])
    assert set(listed) == set(ids) and max(listed.values()) == 1  # in exactly one cluster
    for cluster in exported["clusters"]:
        assert cluster["size"] == len(cluster["members"])
        assert cluster["representative"] == cluster["members"][0]
        for member in cluster["members"]:
            assert record_cluster[member] == cluster["cluster"]

    client = EmbeddedRedis(server.home / "redis").client()
    try:
        states = Counter(stored_state(client, ident) for ident in ids)
        assert states == {"full": PICTURES}, states
        pipe = client.pipeline(transaction=False)
        for ident in ids:
            pipe.hget(f"quaid:picture:{{{ident}}}", "cluster")
        assert {i: int(c) for i, c in zip(ids, pipe.execute(), strict=True)} == record_cluster
        rebuilt = Quaid(client, load_settings(home=server.home))  # what a restarted service would see
        assert sorted(rebuilt.mirror.index.ids()) == sorted(ids)
        for info in rebuilt.mirror.clusters.all():
            members = rebuilt.mirror.clusters.members(info.cluster)
            assert all(record_cluster[m] == info.cluster for m in members)
        assert len(rebuilt.mirror.clusters) == len(exported["clusters"])
    finally:
        client.close()

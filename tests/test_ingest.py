"""Bulk ingest (engine.ingest): parallel preparation gives the records one-by-one adds give; stored
files are skipped on a re-run; a bad file fails alone."""

from __future__ import annotations

import threading

import pytest

import engine.prepare_pool as pool_module
from engine.config import load_settings
from engine.core import Quaid
from engine.ingest import Item, ingest
from engine.store import keys
from tests.drawing import drawn, variant


def pictures() -> list[tuple[str, bytes]]:
    """Pictures with copies among them, so that the cluster choice depends on what came before."""
    out = []
    for seed in range(6):
        original = drawn(seed + 200)
        out.append((f"p{seed}.png", original))
        out.append((f"p{seed}-copy.jpg", variant(original, scale=0.8, quality=70)))
    out.append(("p0-again.png", drawn(200)))  # the same bytes twice in one batch
    return out


def snapshot(quaid: Quaid) -> dict:
    """Everything stored per picture except the time it was added."""
    ids = sorted(quaid.mirror.index.ids())
    records = quaid.records.get_many(ids)
    features = quaid.records.features_many(ids)
    codes = quaid.records.index_entries(ids)
    return {i: (records[i].name, records[i].cluster, records[i].size, records[i].width, features[i],
                codes[i].codes, quaid.image(i)) for i in ids}


def test_parallel_ingest_stores_what_one_by_one_adds_store(redis, tmp_path):
    with Quaid(redis, load_settings(home=tmp_path / "serial")) as serial:
        answers = [serial.add(data, name=name).to_json() for name, data in pictures()]
        expected = snapshot(serial)
    redis.flushall()
    with Quaid(redis, load_settings(home=tmp_path / "parallel")) as parallel:
        items = [Item(name, data) for name, data in pictures()]
        outcomes = [o.to_json() for o in ingest(parallel, items, workers=2)]
        assert outcomes == answers
        assert snapshot(parallel) == expected
    assert len({cluster for _, cluster, *_ in expected.values()}) < len(expected)  # copies joined clusters


def test_a_rerun_skips_what_is_stored_without_decoding_it(redis, tmp_path, monkeypatch):
    calls = []
    real = pool_module.prepare
    monkeypatch.setattr(pool_module, "prepare", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr("engine.ingest.BATCH", 3)
    items = [Item(f"{n}.png", drawn(300 + n, size=(200, 150))) for n in range(10)]
    with Quaid(redis, load_settings(home=tmp_path / "home")) as quaid:
        run = ingest(quaid, items, workers=1)
        first = [next(run) for _ in range(4)]  # interrupted after four
        run.close()
        assert [o.result.status for o in first] == ["added"] * 4
        calls.clear()
        again = list(ingest(quaid, items, workers=1))
        assert [o.result.status for o in again] == ["duplicate"] * 4 + ["added"] * 6
        assert len(calls) == 6  # the four stored ones were not decoded again
        assert [o.result.id for o in again[:4]] == [o.result.id for o in first]


def test_a_bad_file_fails_alone_with_its_reason(redis, tmp_path):
    settings = load_settings(home=tmp_path / "home", max_upload_bytes=2_000_000)
    items = [Item("good.png", drawn(400)), Item("text.png", b"not a picture at all"),
             Item("unreadable.png", None, "Permission denied"), Item("huge.bin", b"\0" * 2_000_001),
             Item("truncated.png", drawn(401)[:300]), Item("good2.png", drawn(402))]
    with Quaid(redis, settings) as quaid:
        outcomes = list(ingest(quaid, items, workers=2))
        assert [o.name for o in outcomes] == [i.name for i in items]
        assert [o.result is not None for o in outcomes] == [True, False, False, False, False, True]
        assert outcomes[2].error == "Permission denied"
        assert "limit" in outcomes[3].error
        assert all(o.error and "\n" not in o.error for o in outcomes[1:5])
        assert len(quaid.mirror.index) == 2
        assert sorted(keys.id_of(k) for k in redis.scan_iter(match=keys.PICTURE_PATTERN)) == \
            sorted(o.result.id for o in outcomes if o.result)


@pytest.mark.parametrize("workers", [1, 2])
def test_ingest_leaves_the_disk_tier_consistent(redis, tmp_path, workers):
    with Quaid(redis, load_settings(home=tmp_path / "home", bulk_store="local")) as quaid:
        list(ingest(quaid, [Item(n, d) for n, d in pictures()], workers=workers))
        assert quaid.check_store().to_json() == {"pictures": 12, "orphans": 0, "missing": 0,
                                                 "repaired": False, "moved": 0}


def test_an_add_job_goes_through_the_bulk_ingest(redis, tmp_path):
    """The service's job worker with the batch handler: results in file order, a bad file fails alone,
    a second job with the same files answers "duplicate" for each."""
    from types import SimpleNamespace

    from engine.service.app import job_batch_handler
    from engine.service.jobs import JobFile, JobQueue, Worker

    with Quaid(redis, load_settings(home=tmp_path / "home")) as quaid:
        app = SimpleNamespace(extensions={"quaid": quaid})
        worker = Worker(redis, None, threading.Event(), block=0.1, batch=job_batch_handler(app, workers=2))
        queue = JobQueue(redis)
        files = [JobFile(n, d) for n, d in pictures()[:4]] + [JobFile("bad.png", b"nope")]
        first = queue.submit("add", files, {"tags": ["batch"]})
        assert worker.step() == 1
        state = queue.status(first)
        assert state["status"] == "done" and [r["file"] for r in state["results"]] == [f.name for f in files]
        assert [r["status"] for r in state["results"]] == ["added"] * 4 + ["error"]
        assert quaid.get(state["results"][0]["id"]).tags == ("batch",)
        second = queue.submit("add", files[:4])
        worker.step()
        assert [r["status"] for r in queue.status(second)["results"]] == ["duplicate"] * 4
        app.extensions["quaid_preparer"].close()

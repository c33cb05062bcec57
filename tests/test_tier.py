"""The disk tier (engine.store.tier): large values off Redis, round trip, delete, reindex, crash safety."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.core import Quaid
from engine.errors import BadInput, StoreUnavailable
from engine.store import keys
from engine.store.tier import LocalTier, RedisTier, is_reference, open_tier
from tests.drawing import drawn, variant

ROOT = Path(__file__).resolve().parent.parent
CLEAN_ONE = {"pictures": 1, "orphans": 0, "missing": 0, "repaired": False, "moved": 0}


@pytest.fixture
def tiered(redis, tmp_path):
    instance = Quaid(redis, load_settings(home=tmp_path / "home", bulk_store="local"))
    yield instance
    instance.close()


def test_auto_puts_large_values_on_local_disk_with_the_embedded_store_only(tmp_path):
    home = tmp_path / "home"
    assert isinstance(open_tier("auto", home, embedded=True), LocalTier)
    assert open_tier("auto", home, embedded=False) is None  # several hosts share an external Redis
    assert open_tier("redis", home, embedded=True) is None
    with pytest.raises(BadInput, match="bulk_store"):
        open_tier("s3://bucket", home, embedded=True)


def test_a_process_on_the_same_redis_follows_the_tier_the_store_declares(redis, tmp_path):
    with Quaid(redis, load_settings(home=tmp_path / "first")) as first:  # embedded: local tier
        ident = first.add(drawn(12)).id
        assert redis.get("quaid:tier") == f"local:{(tmp_path / 'first' / 'bulk').absolute()}".encode()
        external = load_settings(home=tmp_path / "second", redis_url="redis://127.0.0.1:1")
        with Quaid(redis, external) as second:  # would keep everything in Redis on a new store
            assert second.search(variant(drawn(12))).matches[0].id == ident
        redis.set("quaid:tier", "local:/nonexistent/other-host/bulk")
        with pytest.raises(StoreUnavailable, match="QUAID_BULK_STORE"):
            Quaid(redis, external)


def test_orb_feature_and_thumbnail_live_in_the_tier_and_read_back_unchanged(tiered, redis):
    data = drawn(1)
    ident = tiered.add(data, name="one.png").id
    in_redis = redis.hgetall(keys.features(ident))
    assert is_reference(in_redis[b"orb"])  # Redis holds a reference, not the ~50 KB feature
    assert not is_reference(in_redis[b"pdq-screen"])  # what the shortlist is scored with stays in Redis
    assert is_reference(redis.hget(keys.image(ident), "data"))
    extracted = tiered.matcher.extract(tiered._load(data))
    assert tiered.records.feature(ident, "orb") == extracted["orb"]
    assert tiered.records.features_many([ident])[ident] == extracted
    thumbnail, kind = tiered.image(ident)
    assert kind == "image/jpeg" and thumbnail[:2] == b"\xff\xd8"
    assert sum(len(v) for v in in_redis.values()) < 8 * 1024
    answer = tiered.search(variant(data))
    assert answer.decision.value == "accepted" and answer.matches[0].id == ident


def test_deleting_a_picture_deletes_its_tier_data(tiered):
    first, second = tiered.add(drawn(2)).id, tiered.add(drawn(3)).id
    tier = tiered.records.tier
    assert {k.split("/")[0] for k in tier.keys()} == {first, second}
    tiered.delete(first)
    assert {k.split("/")[0] for k in tier.keys()} == {second}
    assert tiered.check_store().to_json() == CLEAN_ONE


def test_tier_files_are_private(tiered):
    tiered.add(drawn(4))
    folder = tiered.settings.home / "bulk"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_refeature_swaps_tier_data_and_removes_the_old(tiered, redis):
    data = drawn(5)
    ident = tiered.add(data).id
    old_keys = set(tiered.records.tier.keys())
    redis.hset(keys.features(ident), "orb", b"quaid-tier:" + b"0" * 32)  # as if an older version wrote it
    tiered.records.tier.put({f"{ident}/orb/{'0' * 32}": b"old feature"})
    assert tiered.refeature(ident, data)
    assert set(tiered.records.tier.keys()) == old_keys  # the old value is gone, the new one is there
    assert tiered.records.feature(ident, "orb") == tiered.matcher.extract(tiered._load(data))["orb"]


def test_kept_originals_go_to_the_tier_and_serve_reindex(redis, tmp_path):
    settings = load_settings(home=tmp_path / "home", bulk_store="local", keep="original")
    with Quaid(redis, settings) as quaid:
        data = drawn(6)
        ident = quaid.add(data).id
        assert is_reference(redis.hget(keys.image(ident), "data"))
        assert quaid.image(ident) == (data, "image/png")


def test_a_second_redis_server_as_the_shared_tier(redis, redis_server, tmp_path):
    url = f"{redis_server.url}?db=5"
    with Quaid(redis, load_settings(home=tmp_path / "home", bulk_store=url)) as quaid:
        assert isinstance(quaid.records.tier, RedisTier)
        data = drawn(7)
        ident = quaid.add(data).id
        assert is_reference(redis.hget(keys.features(ident), "orb"))
        assert quaid.search(variant(data)).matches[0].id == ident
        assert len(list(quaid.records.tier.keys())) == 2  # ORB feature and thumbnail
        quaid.delete(ident)
        assert list(quaid.records.tier.keys()) == []


def test_a_write_killed_between_tier_and_redis_leaves_only_an_orphan(tiered, monkeypatch):
    kept = tiered.add(drawn(8)).id

    def killed(*args, **kwargs):
        raise SystemExit("killed after the tier write")

    monkeypatch.setattr(tiered.records, "_write", killed)
    with pytest.raises(SystemExit):
        tiered.add(drawn(9))
    monkeypatch.undo()
    report = tiered.check_store()
    assert report.missing == [] and len(report.orphans) == 2  # ORB + thumbnail of the lost add
    tiered.check_store(repair=True)
    assert tiered.check_store().to_json() == CLEAN_ONE
    assert tiered.records.feature(kept, "orb")


def test_lost_tier_data_is_reported_and_repair_drops_the_record(tiered):
    lost, kept = tiered.add(drawn(10)).id, tiered.add(drawn(11)).id
    tier = tiered.records.tier
    tier.delete([k for k in tier.keys() if k.startswith(lost)])
    assert tiered.check_store().missing == [lost]
    tiered.check_store(repair=True)
    assert [m.id for m in tiered.search(drawn(11)).matches] == [kept]
    assert tiered.check_store().to_json()["missing"] == 0


_ADDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import redis
    from engine.config import load_settings
    from engine.core import Quaid
    from tests.drawing import drawn
    from engine.ingest import Item, ingest
    socket, home, start, how = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    quaid = Quaid(redis.Redis(unix_socket_path=socket), load_settings(home=home, bulk_store="local"))
    seeds = range(start, start + 1000)
    if how == "add":
        for seed in seeds:
            quaid.add(drawn(seed, size=(320, 240)))
            print(seed, flush=True)
    else:  # the bulk ingest: a batch's tier data first, then its records one by one
        items = (Item(str(seed), drawn(seed, size=(320, 240))) for seed in seeds)
        for seed, outcome in zip(seeds, ingest(quaid, items, workers=1)):
            print(seed, flush=True)
""")


@pytest.mark.parametrize("how", ["add", "ingest"])
def test_kill_9_mid_batch_leaves_every_record_with_its_tier_data(redis, redis_server, tmp_path, how):
    """A process adding pictures is killed (SIGKILL) at several points; after each kill every stored
    record resolves its tier data, and a repair leaves no orphan."""
    home = tmp_path / "home"
    start = 100
    for delay in (0.0, 0.013, 0.031):
        adder = subprocess.Popen([sys.executable, "-c", _ADDER, str(redis_server.socket_path), str(home),
                                  str(start), how], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        for _ in range(3):
            start = int(adder.stdout.readline()) + 1
        time.sleep(delay)
        adder.send_signal(signal.SIGKILL)
        adder.wait()
        start += 10  # seeds the killed process may have started on stay unused
        with Quaid(redis, load_settings(home=home, bulk_store="local")) as quaid:
            report = quaid.check_store(repair=True)
            assert report.missing == []
            for ident in quaid.mirror.index.ids():
                assert quaid.records.feature(ident, "orb") and quaid.image(ident)
            assert quaid.check_store().to_json()["orphans"] == 0
    assert int(redis.dbsize()) > 0


def test_quaid_check_reports_lost_tier_data_and_repairs(tmp_path):
    from tests.test_cli import quaid as run

    home = tmp_path / "home"
    folder = tmp_path / "pictures"
    folder.mkdir()
    for seed in (20, 21):
        (folder / f"{seed}.png").write_bytes(drawn(seed, size=(320, 240)))
    try:
        assert run(home, "add", str(folder)).returncode == 0
        assert run(home, "check", "--json").stdout.strip() == \
            '{"pictures": 2, "orphans": 0, "missing": 0, "repaired": false, "moved": 0}'
        tier = LocalTier(home / "bulk")
        tier.delete([next(tier.keys())])
        tier.close()
        checked = run(home, "check")
        assert checked.returncode == 1 and "disk-tier data is lost" in checked.stderr
        assert run(home, "check", "--repair").returncode == 0
        assert '"pictures": 1' in run(home, "stats", "--json").stdout
    finally:
        from engine.store import EmbeddedRedis

        EmbeddedRedis(home / "redis").stop()


def test_search_answers_are_the_same_with_and_without_the_tier(redis, tmp_path):
    """The tier changes where bytes live, not what a search compares: the same pictures, the same
    queries, the same answers (distances, decisions, every algorithm's vote)."""
    stored = [drawn(seed) for seed in range(40, 46)] + [variant(drawn(40), scale=0.9)]
    queries = [variant(drawn(seed), scale=0.7, quality=60) for seed in range(40, 47)]
    answers = []
    for choice in ("redis", "local"):
        redis.flushall()
        with Quaid(redis, load_settings(home=tmp_path / choice, bulk_store=choice)) as quaid:
            assert (quaid.records.tier is None) == (choice == "redis")
            added = [quaid.add(data).to_json() for data in stored]
            found = [quaid.search(q, include_rejected=True).to_json() for q in queries]
            answers.append((added, found))
    assert answers[0] == answers[1]
    assert any(m["decision"] == "accepted" for answer in answers[0][1] for m in answer["matches"])


def test_repair_moves_what_a_store_without_tier_kept_in_redis(redis, tmp_path):
    """A store filled with everything in Redis (an older version, or bulk_store=redis), then opened
    with the local tier: its ORB features and thumbnails move out of Redis, searches unchanged."""
    data = [drawn(seed) for seed in (50, 51, 52)]
    with Quaid(redis, load_settings(home=tmp_path / "home", bulk_store="redis")) as inline:
        ids = [inline.add(d).id for d in data]
        before = inline.search(variant(data[0]), include_rejected=True).to_json()
        used = redis.info("memory")["used_memory"]
    with Quaid(redis, load_settings(home=tmp_path / "home", bulk_store="local")) as tiered:
        report = tiered.check_store(repair=True)
        assert report.moved == 6 and report.orphans == [] and report.missing == []
        assert all(is_reference(redis.hget(keys.features(i), "orb")) for i in ids)
        assert all(is_reference(redis.hget(keys.image(i), "data")) for i in ids)
        assert tiered.search(variant(data[0]), include_rejected=True).to_json() == before
        moved = sum(len(tiered.records.feature(i, "orb")) + len(tiered.image(i)[0]) for i in ids)
        assert redis.info("memory")["used_memory"] < used - 0.8 * moved  # the RAM is given back
        assert tiered.check_store(repair=True).moved == 0
    with Quaid(redis, load_settings(home=tmp_path / "elsewhere")) as follower:  # auto follows the change
        assert follower.records.tier is not None and follower.image(ids[0])

"""Index snapshots: a restart loads the index from disk, applies the changes made since, and
rebuilds from Redis whenever the snapshot is damaged, foreign, stale or of other feature versions."""

from __future__ import annotations

import logging
import os
import random
import re

import pytest

from engine.store import ChangeLog, RecordStore
from engine.store.mirror import Mirror
from engine.store.records import new_record
from engine.store.snapshot import MAGIC, default_path
from engine.store.versions import VersionCheck

VERSIONS = {"pdq": 1, "dhash": 2}


def _id(n: int) -> str:
    return f"{n:064x}"


def _codes(n: int) -> dict[str, bytes]:
    rng = random.Random(n)
    return {"pdq": rng.randbytes(32), "dhash": rng.randbytes(8)}


def _add(redis, n: int, cluster: int | None = None) -> None:
    record = new_record(_id(n), name=f"p{n}", cluster=cluster if cluster is not None else n % 7 + 1,
                        versions=VERSIONS)
    ChangeLog(redis).publish("add", _id(n))
    RecordStore(redis).put(record, {"pdq": _codes(n)["pdq"] + b"\x64"}, _codes(n))


def _delete(redis, n: int) -> None:
    RecordStore(redis).delete(_id(n))
    ChangeLog(redis).publish("delete", _id(n))


def _mirror(redis, versions: dict[str, int] = VERSIONS) -> Mirror:
    return Mirror(RecordStore(redis), ChangeLog(redis), versions=VersionCheck(versions))


def _state(mirror: Mirror) -> tuple:
    """Everything a search or a cluster answer reads from the mirror."""
    shortlists = [[(c.id, c.distance) for c in mirror.shortlist({k: [v] for k, v in _codes(n).items()}, 5)]
                  for n in (0, 3, 77, 1000)]
    return (sorted(mirror.index.ids()), mirror.clusters.all(), shortlists,
            {i: mirror.clusters.cluster_of(i) for i in mirror.index.ids()}, dict(mirror.stale))


@pytest.fixture
def stored(redis, tmp_path):
    """200 pictures in Redis and a snapshot of them at ``tmp_path/index/snapshot.bin``."""
    for n in range(200):
        _add(redis, n)
    path = default_path(tmp_path)
    first = _mirror(redis)
    assert first.start(path) == "rebuilt"
    assert path.exists()
    return first, path


def test_a_restart_loads_the_snapshot_and_gets_the_same_index(redis, stored):
    first, path = stored
    second = _mirror(redis)
    assert second.start(path) == "snapshot"
    assert _state(second) == _state(first)
    assert second.position == first.position


def test_changes_after_the_snapshot_are_applied(redis, stored):
    first, path = stored
    for n in range(200, 230):
        _add(redis, n)
    _delete(redis, 5)
    RecordStore(redis).set_cluster(_id(6), 99)
    ChangeLog(redis).publish("update", _id(6))
    second, rebuilt = _mirror(redis), _mirror(redis)
    assert second.start(path) == "snapshot"
    assert rebuilt.start(None) == "rebuilt"
    assert _state(second) == _state(rebuilt)
    assert _id(229) in second.index and _id(5) not in second.index
    assert second.clusters.cluster_of(_id(6)) == 99


def _refused(redis, path, caplog, reason: str) -> Mirror:
    mirror = _mirror(redis)
    with caplog.at_level(logging.INFO, logger="engine.store.mirror"):
        assert mirror.start(path) == "rebuilt"
    assert any(reason in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records), \
        [r.getMessage() for r in caplog.records]
    return mirror


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_a_damaged_snapshot_is_rebuilt(redis, stored, caplog, damage):
    first, path = stored
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x10
    elif damage == "truncate":
        data = data[: len(data) - 100]
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    mirror = _refused(redis, path, caplog, "checksum" if damage != "empty" else "not a quaid index snapshot")
    assert _state(mirror) == _state(first)
    assert _mirror(redis).start(path) == "snapshot"  # the rebuild wrote a good one


def test_a_snapshot_of_another_store_is_rebuilt(redis, stored, caplog):
    _, path = stored
    redis.flushall()  # the store emptied and refilled: same ids, other content
    for n in range(50):
        _add(redis, n, cluster=500 + n)
    mirror = _refused(redis, path, caplog, "another store")
    assert len(mirror.index) == 50 and mirror.clusters.cluster_of(_id(0)) == 500


def test_a_snapshot_whose_changes_were_trimmed_is_rebuilt(redis, stored, caplog):
    _, path = stored
    for n in range(200, 210):
        _add(redis, n)
    redis.xtrim(ChangeLog(redis).key, maxlen=3, approximate=False)  # events after the snapshot gone
    mirror = _refused(redis, path, caplog, "trimmed")
    assert _id(209) in mirror.index and _id(200) in mirror.index


def test_a_snapshot_newer_than_the_stream_is_rebuilt(redis, stored, caplog):
    _, path = stored
    redis.delete(ChangeLog(redis).key)  # as after restoring a backup taken before the snapshot
    _delete(redis, 7)
    redis.delete(ChangeLog(redis).key)
    _refused(redis, path, caplog, "store restored or stream reset")


def test_a_snapshot_of_other_feature_versions_is_rebuilt(redis, stored, caplog):
    _, path = stored
    mirror = Mirror(RecordStore(redis), ChangeLog(redis), versions=VersionCheck({**VERSIONS, "dhash": 3}))
    with caplog.at_level(logging.INFO, logger="engine.store.mirror"):
        assert mirror.start(path) == "rebuilt"
    assert any("feature versions" in r.getMessage() for r in caplog.records)
    assert len(mirror.stale) == 200 and not len(mirror.index)


def test_a_snapshot_others_can_write_to_is_not_trusted(redis, stored, caplog):
    _, path = stored
    os.chmod(path, 0o666)
    _refused(redis, path, caplog, "writable by other users")


def test_the_file_is_private_and_holds_no_pickle(redis, stored):
    _, path = stored
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    assert b"\x80\x04\x95" not in data[:4096]  # no pickle protocol-4 frame in the header


def test_pending_and_stale_pictures_survive_a_restart(redis, tmp_path):
    for n in range(20):
        _add(redis, n)
    old = new_record(_id(100), cluster=3, versions={**VERSIONS, "dhash": 1})
    RecordStore(redis).put(old, {}, _codes(100))
    ChangeLog(redis).publish("add", _id(100))
    ChangeLog(redis).publish("add", _id(101))  # announced, never written (yet)
    path = default_path(tmp_path)
    first = _mirror(redis)
    first.start(path)
    assert set(first.stale) == {_id(100)}
    first.save_snapshot(path)
    second = _mirror(redis)
    assert second.start(path) == "snapshot"
    assert second.stale == first.stale
    _add(redis, 101)  # its writer finishes now: found though its event came before the snapshot
    second.sync()
    assert _id(101) in second.index


def _put(redis, n: int, versions: dict) -> None:
    ChangeLog(redis).publish("add", _id(n))
    RecordStore(redis).put(new_record(_id(n), cluster=n + 1, versions=versions), {}, _codes(n))


def _loaded_from_snapshot(caplog, pictures: int, changes: int) -> bool:
    wanted = re.compile(rf"loaded from its snapshot: {pictures} pictures in .* s, {changes} changes since")
    return any(wanted.search(r.getMessage()) for r in caplog.records)


def test_the_engine_starts_from_its_snapshot_and_writes_it_at_close(redis, quaid_settings, caplog):
    from engine.core import Quaid

    quaid = Quaid(redis, quaid_settings)  # empty store: rebuilt, snapshot written
    versions = quaid.versions.current
    quaid.close()
    assert default_path(quaid_settings.home).exists()
    for n in range(30):
        _put(redis, n, versions)
    with caplog.at_level(logging.INFO, logger="engine.store.mirror"):
        quaid = Quaid(redis, quaid_settings)
        assert _loaded_from_snapshot(caplog, pictures=30, changes=30)
        quaid.close()  # the index moved on since its snapshot: written again
        caplog.clear()
        quaid = Quaid(redis, quaid_settings)
    assert _loaded_from_snapshot(caplog, pictures=30, changes=0)
    assert len(quaid.mirror.index) == 30
    quaid.close()


def test_a_running_service_writes_snapshots_as_the_index_moves_on(redis, quaid_settings, monkeypatch):
    import threading
    import time

    from engine.cli import serve
    from engine.core import Quaid

    monkeypatch.setattr(serve, "SNAPSHOT_EVERY", 0.05)
    quaid = Quaid(redis, quaid_settings)
    path = default_path(quaid_settings.home)
    written = path.stat().st_mtime_ns
    stop = threading.Event()
    thread = serve._start_snapshots(quaid, stop)
    try:
        _put(redis, 1, quaid.versions.current)  # another process adds a picture
        deadline = time.monotonic() + 30
        while path.stat().st_mtime_ns == written and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert path.stat().st_mtime_ns != written
    quaid.close()
    fresh = Mirror(RecordStore(redis), ChangeLog(redis), versions=quaid.versions)
    assert fresh.start(path) == "snapshot" and _id(1) in fresh.index


def _debian_redis_7() -> str | None:
    import shutil
    import subprocess

    found = shutil.which("redis-server")
    if not found:
        return None
    version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
    major = version.partition(" v=")[2].partition(".")[0]
    return found if major.isdigit() and int(major) >= 7 else None


@pytest.mark.skipif(_debian_redis_7() is None, reason="needs a Redis 7 redis-server on PATH")
def test_redis_7_tells_trimmed_events_even_from_the_streams_start(tmp_path, monkeypatch):
    """Redis 7's max-deleted-entry-id covers a snapshot taken before the first event (position 0-0),
    which Redis 6 can only judge by the stream's length."""
    from engine.store import EmbeddedRedis
    from engine.store.changes import START

    monkeypatch.setenv("QUAID_REDIS_SERVER", _debian_redis_7())
    server = EmbeddedRedis(tmp_path / "redis7")
    client = server.acquire()
    try:
        assert int(client.info("server")["redis_version"].split(".")[0]) >= 7
        changes = ChangeLog(client)
        ids = [changes.publish("add", _id(n)) for n in range(5)]
        assert changes.gap_after(START) is None and changes.gap_after(ids[1]) is None
        client.xtrim(changes.key, maxlen=2, approximate=False)
        assert "trimmed" in changes.gap_after(START)
        assert "trimmed" in changes.gap_after(ids[1])
        assert changes.gap_after(ids[3]) is None  # still in the stream: nothing after it lost
    finally:
        client.close()
        server.stop()


def test_a_data_directory_made_for_the_snapshot_is_private(redis, tmp_path):
    _add(redis, 1)
    path = default_path(tmp_path / "new-home")  # an external Redis: nothing made the home yet
    assert _mirror(redis).start(path) == "rebuilt"
    assert (tmp_path / "new-home").stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_snapshot_is_due_once_replaying_the_changes_would_cost_more_than_writing_it(redis, stored):
    _, path = stored
    mirror = _mirror(redis)
    mirror.start(path)
    assert not mirror.snapshot_due()  # nothing changed since
    _add(redis, 500)
    mirror.sync()
    assert not mirror.snapshot_due()  # 1 change for 201 pictures: cheaper to replay at the next start
    _add(redis, 501)
    _add(redis, 502)
    mirror.sync()
    assert mirror.snapshot_due()  # 3 changes cost more than writing 203 entries
    assert mirror.save_snapshot(path)
    assert not mirror.snapshot_due()
    assert _mirror(redis).start(path) == "snapshot"


@pytest.mark.parametrize("field, value", [("position", "not-a-position"), ("stale", ["x"]),
                                          ("tables", ["nowhere"]), ("foreign", {"x": 1})])
def test_a_snapshot_with_a_malformed_header_is_rebuilt(redis, stored, caplog, field, value):
    from engine.store import snapshot

    first, path = stored
    saved = snapshot.load(path)
    saved.header[field] = value
    snapshot.save(path, saved)  # a well-formed file (right checksum) saying something wrong
    mirror = _mirror(redis)
    with caplog.at_level(logging.INFO, logger="engine.store.mirror"):
        assert mirror.start(path) == "rebuilt"
    assert _state(mirror) == _state(first)

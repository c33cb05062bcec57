"""The Redis store against a real redis-server: records, embedded server, change stream, Quaid."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
from redis.crc import key_slot

from engine.config import load_settings
from engine.core import Quaid
from engine.errors import NotAPicture, NotFound
from engine.store import ChangeLog, EmbeddedRedis, PictureRecord, RecordStore, keys
from engine.store import changes as changes_module
from tests.cluster_fixture import all_keys
from tests.drawing import drawn, variant

pytestmark = pytest.mark.cluster  # tests on the `redis`/`quaid` fixtures also run on a Redis Cluster

# --- keys and records ----------------------------------------------------------------------


def test_every_key_of_a_picture_lives_in_one_cluster_slot():
    ident = hashlib.sha256(b"x").hexdigest()
    slots = {key_slot(k.encode()) for k in keys.picture_keys(ident)}
    assert len(slots) == 1
    assert keys.id_of(keys.image(ident)) == ident


def test_record_round_trip_keeps_binary_features_and_refuses_a_second_put(redis):
    store = RecordStore(redis)
    record = PictureRecord(id="ab" * 32, name="a.png", tags=("phishing", "bank"), metadata={"url": "x"},
                           added=1.5, size=10, width=3, height=4, format="PNG", cluster=9)
    features = {"pdq": bytes(range(256)) + b"\x00\xff", "orb": b"\x00" * 5}
    assert store.put(record, features, {"pdq": b"\x01" * 32}, (b"\x89PNG", "image/png"))
    assert not store.put(PictureRecord(id=record.id, name="other"), {}, {})
    assert store.get(record.id) == record
    assert store.features_many([record.id, "missing"]) == {record.id: features}
    assert store.image(record.id) == (b"\x89PNG", "image/png")
    assert store.index_entries([record.id])[record.id].codes == {"pdq": b"\x01" * 32}
    assert store.update(record.id, tags=["new"]) and store.get(record.id).tags == ("new",)
    assert store.delete(record.id).cluster == 9
    assert store.delete(record.id) is None
    assert all_keys(redis) == []  # nothing of the picture is left


def test_shortlist_features_fetch_costly_features_only_when_asked(redis):
    store = RecordStore(redis)
    ident = "cd" * 32
    store.put(PictureRecord(id=ident, name="x"), {"cheap": b"\x01", "costly": b"\x02" * 1000}, {})
    fetched = store.shortlist_features([ident, "ef" * 32], eager=["cheap"])
    assert list(fetched) == [ident]  # the absent id is left out
    features = fetched[ident]
    assert set(features) == {"cheap", "costly"} and "costly" in features
    assert features._loaded == {"cheap": b"\x01"}  # the costly one has not travelled
    assert features["costly"] == b"\x02" * 1000
    with pytest.raises(KeyError):
        features["absent"]
    assert sorted(store.shortlist_features([ident], eager=[])[ident]) == ["cheap", "costly"]
    everything = store.features_many([ident, "ef" * 32])  # the export's full fetch
    assert everything == {ident: {"cheap": b"\x01", "costly": b"\x02" * 1000}}


def test_prefetch_loads_a_whole_shortlist_in_one_round_trip(redis, monkeypatch):
    store = RecordStore(redis)
    idents = [f"{n:02x}" * 32 for n in range(5)]
    for n, ident in enumerate(idents):
        costly = {"costly": bytes([n]) * 1000} if n != 3 else {}  # one stored before the verifier existed
        store.put(PictureRecord(id=ident, name=str(n)), {"cheap": b"\x01", **costly}, {})
    shortlist = list(store.shortlist_features(idents, eager=["cheap"]).values())
    store.prefetch(shortlist, ["costly", "absent"])
    monkeypatch.setattr(store, "feature", lambda *a: pytest.fail("a feature was fetched one by one"))
    for n, features in enumerate(shortlist):
        if n == 3:
            assert "costly" not in features
        else:
            assert features["costly"] == bytes([n]) * 1000
    monkeypatch.setattr(store.redis, "pipeline", lambda *a, **k: pytest.fail("nothing was left to fetch"))
    store.prefetch(shortlist, ["costly"])


def test_scan_finds_every_stored_picture(redis):
    store = RecordStore(redis)
    for n in range(2500):
        store.put(PictureRecord(id=f"{n:064x}", cluster=n % 7), {}, {"d": n.to_bytes(8, "big")})
    entries = list(store.scan_entries(batch=300))
    assert len(entries) == 2500
    assert {e.codes["d"] for e in entries} == {n.to_bytes(8, "big") for n in range(2500)}


def test_change_log_reads_in_order_and_detects_a_trimmed_position(redis):
    log = ChangeLog(redis)
    first = log.publish("add", "a")
    log.publish("delete", "a")
    log.publish("add", "b")
    assert [(c.op, c.id) for c in log.read(changes_module.START)] == [("add", "a"), ("delete", "a"),
                                                                       ("add", "b")]
    assert [c.id for c in log.read(first)] == ["a", "b"]
    assert not log.missed(first)
    redis.xtrim(keys.CHANGES, maxlen=1, approximate=False)
    assert log.missed(first)


# --- the embedded server -------------------------------------------------------------------

def test_embedded_server_persists_shares_and_stops_with_its_last_user(tmp_path):
    first, second = EmbeddedRedis(tmp_path / "r"), EmbeddedRedis(tmp_path / "r")
    client = first.acquire()
    try:
        assert client.config_get("port")["port"] == "0"  # no TCP listener
        assert client.config_get("appendonly")["appendonly"] == "yes"
        pid = int(first.pid_path.read_text())
        client.set("kept", "yes")
        second.acquire()
        assert int(second.pid_path.read_text()) == pid  # reused, not a second server
        assert first.release() is False  # second still connected
        reader = second.client()
        assert reader.get("kept") == b"yes"
        reader.close()
        assert second.release() is True
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]
        third = EmbeddedRedis(tmp_path / "r")
        assert third.acquire().get("kept") == b"yes"  # survived the restart (AOF + RDB)
        assert (tmp_path / "r" / "appendonly.aof").exists()
    finally:
        EmbeddedRedis(tmp_path / "r").stop()


def test_embedded_server_uses_a_short_socket_path_for_deep_homes(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = EmbeddedRedis(deep)
    try:
        assert server.acquire().ping()
        assert len(str(server.socket_path)) <= 100  # chosen (a private directory) at the first start
    finally:
        server.stop()


# --- the Quaid facade ---------------------------------------------------------------------

def test_add_search_delete(quaid):
    added = quaid.add(drawn(10), name="page", tags=["bank"], metadata={"source": "test"})
    quaid.add(drawn(11), name="other page")
    assert added.status == "added" and added.id == hashlib.sha256(drawn(10)).hexdigest()
    result = quaid.search(variant(drawn(10)))
    assert result.decision.value == "accepted"
    assert [m.id for m in result.matches] == [added.id]  # the other page is rejected, so omitted
    answer = result.to_json()
    assert set(answer) == {"decision", "matches"}
    match = answer["matches"][0]
    assert set(match) == {"id", "name", "distance", "decision", "cluster", "tags", "algorithms"}
    assert match["tags"] == ["bank"] and match["name"] == "page"
    assert all(set(v) == {"distance", "decision"} for v in match["algorithms"].values())
    everything = quaid.search(variant(drawn(10)), include_rejected=True).matches
    assert [m.decision.value for m in everything] == ["accepted", "rejected"]
    assert quaid.get(added.id).metadata == {"source": "test"}
    quaid.delete(added.id)
    assert quaid.search(variant(drawn(10))).decision.value == "rejected"
    with pytest.raises(NotFound):
        quaid.get(added.id)
    with pytest.raises(NotFound):
        quaid.delete(added.id)


def test_a_candidate_deleted_during_a_search_is_dropped_not_an_error(quaid, monkeypatch):
    """Another process deletes a shortlisted picture after the search fetched its record."""
    kept = quaid.add(drawn(14), name="kept").id
    gone = quaid.add(variant(drawn(14), scale=0.9), name="deleted meanwhile").id
    real_prefetch = quaid.records.prefetch
    deleted = []

    def delete_first(features, names):
        if not deleted:
            deleted.append(quaid.records.delete(gone))  # its record and features vanish from Redis
        real_prefetch(features, names)

    monkeypatch.setattr(quaid.records, "prefetch", delete_first)
    result = quaid.search(variant(drawn(14)), include_rejected=True)
    assert deleted and deleted[0] is not None  # the delete really happened mid-search
    assert [m.id for m in result.matches][:1] == [kept] and gone not in {m.id for m in result.matches}
    assert result.decision.value == "accepted"
    assert gone not in quaid.mirror.index


def test_adding_twice_is_a_duplicate_that_changes_nothing(quaid):
    first = quaid.add(drawn(12), name="first", tags=["a"])
    again = quaid.add(drawn(12), name="second", tags=["b"])
    assert (again.status, again.id, again.cluster) == ("duplicate", first.id, first.cluster)
    assert again.name == "first"
    assert quaid.get(first.id).tags == ("a",)
    assert quaid.stats()["pictures"] == 1


def test_concurrent_adds_of_the_same_bytes_store_it_once(redis, quaid_settings):
    instances = [Quaid(redis, quaid_settings) for _ in range(4)]
    statuses: list[str] = []
    barrier = threading.Barrier(len(instances))

    def add(instance: Quaid) -> None:
        barrier.wait()
        statuses.append(instance.add(drawn(13)).status)

    threads = [threading.Thread(target=add, args=(q,)) for q in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["added", "duplicate", "duplicate", "duplicate"]
    assert len(all_keys(redis, keys.PICTURE_PATTERN)) == 1


def test_bad_pictures_are_refused_and_leave_nothing(quaid, redis):
    with pytest.raises(NotAPicture):
        quaid.add(b"not a picture at all")
    with pytest.raises(NotAPicture):
        quaid.add(drawn(14)[:200])  # truncated PNG
    assert all_keys(redis, keys.PICTURE_PATTERN) == []


def test_thumbnail_is_kept_by_default_and_original_on_request(redis, quaid_settings, tmp_path):
    thumb = Quaid(redis, quaid_settings).add(drawn(15, size=(1000, 700)))
    data, kind = Quaid(redis, quaid_settings).image(thumb.id)
    assert kind == "image/jpeg" and data[:2] == b"\xff\xd8"
    original = Quaid(redis, load_settings(home=tmp_path, keep="original"))
    added = original.add(drawn(16))
    assert original.image(added.id) == (drawn(16), "image/png")
    nothing = Quaid(redis, load_settings(home=tmp_path, keep="none"))
    assert nothing.image(nothing.add(drawn(17)).id) is None


def test_two_instances_stay_in_sync_through_the_stream(redis, quaid_settings):
    writer, reader = Quaid(redis, quaid_settings), Quaid(redis, quaid_settings)
    added = writer.add(drawn(18))
    assert [m.id for m in reader.search(variant(drawn(18))).matches] == [added.id]
    assert reader.stats()["pictures"] == 1
    writer.delete(added.id)
    assert reader.search(variant(drawn(18))).matches == []
    assert reader.stats()["pictures"] == 0


def test_an_announced_add_whose_writer_died_is_dropped_after_the_grace(redis, quaid_settings, monkeypatch):
    reader = Quaid(redis, quaid_settings)
    ChangeLog(redis).publish("add", "f" * 64)  # announced, never written
    reader.mirror.sync()
    assert "f" * 64 in reader.mirror._pending
    monkeypatch.setattr("engine.store.mirror.PENDING_GRACE", 0.0)
    reader.mirror.sync()
    assert reader.mirror._pending == {}
    assert len(reader.mirror.index) == 0


def test_a_missed_delete_is_healed_at_search_time(redis, quaid_settings):
    writer, reader = Quaid(redis, quaid_settings), Quaid(redis, quaid_settings)
    added = writer.add(drawn(19))
    reader.mirror.sync()
    writer.records.delete(added.id)  # as if the deleting process died before announcing it
    assert reader.search(drawn(19)).matches == []
    assert added.id not in reader.mirror.index


def test_data_survives_a_restart_of_the_embedded_server(tmp_path):
    settings = load_settings(home=tmp_path / "home", redis_url=None)
    server = EmbeddedRedis(tmp_path / "home" / "redis")
    try:
        with Quaid.open(settings) as quaid:
            added = quaid.add(drawn(20), name="kept")
        assert not server.socket_path.exists()  # the last user stopped it
        with Quaid.open(settings) as quaid:
            assert quaid.get(added.id).name == "kept"
            assert [m.id for m in quaid.search(variant(drawn(20))).matches] == [added.id]
    finally:
        server.stop()


def test_a_position_trimmed_just_before_the_oldest_kept_event_lost_nothing(redis):
    """The reader's own last event was trimmed, the next one is kept: nothing was lost, no rebuild.
    One event further back, and the events between are gone."""
    log = ChangeLog(redis)
    ids = [log.publish("add", f"p{n}") for n in range(4)]
    redis.xtrim(keys.CHANGES, maxlen=2, approximate=False)  # ids[0] and ids[1] trimmed
    assert not log.missed(ids[1])
    assert log.gap_after(ids[1]) is None
    assert log.missed(ids[0])
    assert [c.id for c in log.read(ids[1])] == ["p2", "p3"]

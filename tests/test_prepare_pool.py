"""Worker results cross the process boundary as framed bytes (engine.prepared_wire), never pickled:
the owner parses them with length checks only, and a worker that dies or answers garbage fails
one file."""

from __future__ import annotations

import hashlib
import multiprocessing.reduction
import os
import pickle  # noqa: S403 - to forbid unpickling, and to forge a pickled answer
import signal
import time

import pytest

from engine import prepared_wire
from engine.config import load_settings
from engine.core import Quaid
from engine.ingest import Item, ingest
from engine.matching import Matcher
from engine.prepare_pool import MALFORMED, Preparer, _Feeder, prepare_or_reason
from engine.prepared import Prepared, prepare
from tests.drawing import drawn, variant
from tests.test_ingest import pictures, snapshot


def prepared_picture() -> Prepared:
    settings = load_settings()
    return prepare(Matcher(settings), settings, drawn(500))


def test_a_prepared_picture_round_trips_through_the_wire_format():
    prepared = prepared_picture()
    assert prepared.image is not None and len(prepared.query_features) > 3
    assert prepared_wire.decode(prepared_wire.encode(prepared)) == prepared
    no_image = Prepared("ab" * 32, 0, 1, 1, "PNG", {}, {"x": []}, None)
    assert prepared_wire.decode(prepared_wire.encode(no_image)) == no_image
    assert prepared_wire.decode(prepared_wire.encode("not a picture: ü")) == "not a picture: ü"


@pytest.mark.parametrize("damage", ["pickle", "truncated", "trailing", "tag", "huge count", "empty"])
def test_anything_but_the_wire_format_is_refused(damage):
    good = prepared_wire.encode(prepared_picture())
    data = {"pickle": pickle.dumps(prepared_picture()), "truncated": good[:-1], "trailing": good + b"\0",
            "tag": b"X" + good[1:], "empty": b""}.get(damage)
    if damage == "huge count":  # the feature count (after id, size, width, height, format)
        at = 1
        for _ in range(5):
            at += 4 + int.from_bytes(good[at:at + 4], "big")
        data = good[:at + 4] + (1 << 40).to_bytes(8, "big") + good[at + 12:]
    with pytest.raises(prepared_wire.MalformedResult):
        prepared_wire.decode(data)


def test_bulk_ingest_never_unpickles_what_a_worker_sent(redis, tmp_path, monkeypatch):
    """With unpickling forbidden in this (the owning) process, two workers still give the records
    one-by-one adds give. ProcessPoolExecutor, which pickles its results, fails this test."""
    with Quaid(redis, load_settings(home=tmp_path / "serial")) as serial:
        answers = [serial.add(data, name=name).to_json() for name, data in pictures()]
        expected = snapshot(serial)
    redis.flushall()

    def forbidden(*args, **kwargs):
        raise AssertionError("the owning process unpickled data")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(multiprocessing.reduction.ForkingPickler, "loads", forbidden)
    with Quaid(redis, load_settings(home=tmp_path / "parallel")) as parallel:
        outcomes = [o.to_json() for o in ingest(parallel, [Item(n, d) for n, d in pictures()], workers=2)]
        assert outcomes == answers
        assert snapshot(parallel) == expected


def test_a_worker_killed_between_files_is_replaced(tmp_path):
    settings = load_settings(home=tmp_path)
    with Preparer(settings, 2) as preparer:
        first = [preparer.submit(drawn(510 + n)) for n in range(2)]
        assert all(isinstance(f.result(timeout=60), Prepared) for f in first)
        for pid in preparer.worker_pids():
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while preparer.worker_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        data = drawn(520)
        again = preparer.submit(data).result(timeout=60)
        assert isinstance(again, Prepared) and again.id == hashlib.sha256(data).hexdigest()


class _Answers:
    """A worker's end of the pipe that answers with fixed bytes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def send_bytes(self, data: bytes) -> None:
        pass

    def recv_bytes(self) -> bytes:
        return self.answer

    def close(self) -> None:
        pass


@pytest.mark.parametrize("answer", ["pickle", "another picture"])
def test_a_worker_answering_garbage_fails_that_file_only(tmp_path, answer):
    settings = load_settings(home=tmp_path)
    other = prepare(Matcher(settings), settings, variant(drawn(530), scale=0.5))
    answers = {"pickle": pickle.dumps(other), "another picture": prepared_wire.encode(other)}
    feeder = _Feeder(settings, __import__("queue").SimpleQueue())
    try:
        feeder.connection = _Answers(answers[answer])
        assert feeder._prepared(drawn(531)) == MALFORMED
        assert feeder.connection is None  # that worker is not trusted again
    finally:
        feeder.jobs.put(None)
        feeder.join()


def test_a_failure_in_a_worker_is_the_file_reason():
    settings = load_settings()
    reason = prepare_or_reason(Matcher(settings), settings, b"not a picture")
    assert isinstance(reason, str) and "\n" not in reason
    assert prepared_wire.decode(prepared_wire.encode(reason)) == reason


def test_closing_cancels_what_was_not_started_and_stops_every_worker(tmp_path):
    settings = load_settings(home=tmp_path)
    preparer = Preparer(settings, 2)
    futures = [preparer.submit(drawn(540 + n, size=(400, 300))) for n in range(12)]
    assert isinstance(futures[0].result(timeout=60), Prepared)
    pids = preparer.worker_pids()
    preparer.close()
    assert all(f.done() for f in futures)
    assert all(f.cancelled() or isinstance(f.result(), Prepared) for f in futures)
    assert not preparer.worker_pids()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

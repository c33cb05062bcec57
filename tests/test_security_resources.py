"""Resources an upload may take: accepted formats only, a decoded-pixel budget shared by all requests,
memory handed back after large decodes.

Host reference: Pillow 13.0 opens any registered format unless ``Image.open(fp, formats=...)`` names
them (``PIL/Image.py``: ``open``); its EPS plugin runs Ghostscript (``gs``) at ``load``
(``PIL/EpsImagePlugin.py``: ``Ghostscript``), so an upload must never reach it.
"""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from engine.budget import PixelBudget
from engine.errors import NotAPicture, PictureTooLarge, ServiceBusy
from engine.picture import load_picture
from tests.drawing import drawn
from tests.serverproc import ServerProcess, run_python_json

# Formats Pillow 13 can both write and read back here, none of them accepted by quaid.
OTHER_FORMATS = ["EPS", "ICO", "ICNS", "TGA", "PPM", "PCX", "SGI", "IM", "DDS", "QOI", "JPEG2000", "PDF"]


def other_format(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(out, fmt)
    return out.getvalue()


def grey_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 200).save(out, "PNG", optimize=True)
    return out.getvalue()


# --- formats --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", OTHER_FORMATS)
def test_formats_outside_the_allowlist_are_refused(fmt):
    with pytest.raises(NotAPicture, match="supported format"):
        load_picture(other_format(fmt))


def test_an_eps_upload_never_reaches_pillows_eps_plugin(monkeypatch):
    reached = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: reached.append(self))
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: reached.append(a))
    with pytest.raises(NotAPicture):
        load_picture(other_format("EPS"))
    assert reached == []


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"])
def test_the_allowed_formats_still_decode(fmt):
    out = io.BytesIO()
    Image.open(io.BytesIO(drawn(2))).convert("RGB").save(out, fmt)
    assert load_picture(out.getvalue()).format == fmt


# --- the budget -----------------------------------------------------------------------------------

def test_concurrent_reservations_never_exceed_the_budget():
    budget = PixelBudget(100, wait=10)
    peak, lock = [0], threading.Lock()

    def decode():
        with budget.reserve(30):
            with lock:
                peak[0] = max(peak[0], budget.used)
            time.sleep(0.02)

    threads = [threading.Thread(target=decode) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 60 <= peak[0] <= 90 and budget.used == 0


def test_a_picture_above_the_whole_budget_is_too_large_and_a_full_budget_busy():
    budget = PixelBudget(100, wait=0.2)
    with pytest.raises(PictureTooLarge, match="decoding budget"):
        with budget.reserve(101):
            pass
    with budget.reserve(80):
        started = time.monotonic()
        with pytest.raises(ServiceBusy) as busy:
            with budget.reserve(30):
                pass
        assert time.monotonic() - started >= 0.2 and busy.value.retry_after >= 1
    with budget.reserve(100):  # given back: the whole budget is free again
        pass


def test_load_picture_reserves_the_pixels_it_decodes():
    budget = PixelBudget(10_000_000, wait=0.1)
    with budget.reserve(9_999_000):
        with pytest.raises(ServiceBusy):
            load_picture(grey_png(100, 100), budget=budget)  # 10 000 pixels do not fit
        load_picture(grey_png(20, 20), budget=budget)  # 400 do


def test_a_busy_budget_answers_503_with_retry_after(quaid, quaid_settings):
    from engine.service.app import create_app

    app = create_app(quaid_settings, quaid)
    quaid.budget.wait = 0.2
    with quaid.budget.reserve(quaid.budget.capacity):
        answer = app.test_client().post("/api/v1/search", data={"file": (io.BytesIO(drawn(1)), "a.png")},
                                         headers={"X-Quaid-Request": "1"})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert "busy" in answer.get_json()["error"]


@pytest.fixture(scope="module")
def small_budget_server(tmp_path_factory):
    env = {"QUAID_DECODE_BUDGET_MEGAPIXELS": "2"}
    with ServerProcess(tmp_path_factory.mktemp("budget"), env=env) as server:
        yield server


def test_the_service_answers_413_above_the_budget_and_415_for_other_formats(small_budget_server):
    answer = small_budget_server.post("/api/v1/search", files={"file": ("big.png", grey_png(2000, 1500))})
    assert answer.status_code == 413 and "decoding budget" in answer.json()["error"]
    for fmt in ("EPS", "ICO", "TGA"):
        answer = small_budget_server.post("/api/v1/pictures", files={"file": (f"x.{fmt}", other_format(fmt))})
        assert answer.status_code == 415, (fmt, answer.text)
        assert "supported format" in answer.json()["error"]
    ok = small_budget_server.post("/api/v1/search", files={"file": ("ok.png", grey_png(1000, 1000))})
    assert ok.status_code == 200


def test_tags_that_are_objects_are_a_400_not_their_repr(small_budget_server):
    answer = small_budget_server.post("/api/v1/pictures", files={"file": ("a.png", drawn(9))},
                                      data={"tags": '[{"a": 1}]'})
    assert answer.status_code == 400 and "must be a string" in answer.json()["error"]


# --- memory ---------------------------------------------------------------------------------------

# Four threads decode a 40-megapixel grey PNG each at once; the budget (argv[1], megapixels) lets one
# through at a time when it is 40. Reports peak RSS growth and RSS after, in MB.
PEAK_SCRIPT = r"""
import io, json, sys, threading
from PIL import Image
from engine.budget import PixelBudget
from engine.memory import keep_freed_memory
from engine.picture import load_picture
keep_freed_memory()
def status(field):
    return int(open("/proc/self/status").read().split(field + ":")[1].split()[0]) / 1024
def png(size):
    out = io.BytesIO()
    Image.new("P", size, 3).save(out, "PNG")  # palette: decoded 1 byte a pixel, widened to RGB
    return out.getvalue()
data = png((8000, 5000))
load_picture(png((800, 500)))  # imports and first allocations out of the way
base = status("VmRSS")
budget = PixelBudget(int(float(sys.argv[1]) * 1e6), wait=120)
threads = [threading.Thread(target=load_picture, args=(data,), kwargs={"budget": budget}) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"peak": status("VmHWM") - base, "after": status("VmRSS") - base}))
"""


def test_four_large_pictures_at_once_stay_within_the_budget_and_memory_is_handed_back():
    one_at_a_time = run_python_json(PEAK_SCRIPT, "40")
    all_at_once = run_python_json(PEAK_SCRIPT, "1000")
    assert all_at_once["peak"] > 2.5 * one_at_a_time["peak"], (one_at_a_time, all_at_once)
    assert one_at_a_time["after"] < 40 and all_at_once["after"] < 40  # MB kept after: malloc_trim


def test_grey_pictures_decode_to_the_same_pixels_when_resized_before_widening():
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (1700, 2300), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(grey, "L").save(out, "PNG")
    expected = Image.fromarray(grey, "L").convert("RGB")
    expected.thumbnail((1280, 1280), Image.Resampling.LANCZOS)
    assert np.array_equal(load_picture(out.getvalue()).rgb, np.asarray(expected))


# --- batch jobs -----------------------------------------------------------------------------------

def test_job_files_are_stored_one_by_one_as_they_come(redis):
    from engine.service.jobs import JobFile, JobQueue
    from engine.store import keys

    seen_stored = []

    def files():
        for index in range(3):
            job_keys = [k for k in redis.scan_iter(match="*job*files*")]
            seen_stored.append(sum(redis.hlen(k) for k in job_keys))
            yield JobFile(f"f{index}", bytes([index]) * 10)

    job = JobQueue(redis).submit("search", files())
    assert seen_stored == [0, 1, 2]  # file n was written before file n + 1 was read
    assert redis.hlen(keys.job_files(job)) == 3 and redis.ttl(keys.job_files(job)) > 0


def test_a_job_over_its_size_budget_is_413_and_leaves_nothing(redis):
    from engine.service.jobs import JobFile, JobQueue

    queue = JobQueue(redis, max_bytes=25)
    with pytest.raises(PictureTooLarge, match="at most 25 bytes"):
        queue.submit("add", (JobFile(f"f{n}", b"x" * 10) for n in range(3)))
    assert list(redis.scan_iter(match="*job*")) == []


def test_a_job_worker_waits_out_a_busy_budget_instead_of_failing_the_file(redis):
    from engine.service.jobs import JobFile, JobQueue, Worker

    calls = []

    def busy_twice(action, data, name, options):
        calls.append(name)
        if len(calls) <= 2:
            raise ServiceBusy("busy decoding other large pictures: retry shortly", retry_after=0)
        return {"status": "added"}

    queue = JobQueue(redis)
    job = queue.submit("add", [JobFile("big.png", b"x")])
    stop = threading.Event()
    thread = threading.Thread(target=Worker(redis, busy_twice, stop, block=0.1).run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while queue.status(job)["status"] != "done" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(5)
    assert queue.status(job)["results"] == [{"file": "big.png", "status": "added"}]
    assert len(calls) == 3

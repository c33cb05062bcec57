"""engine.memory: with glibc's thresholds fixed, repeated searches stop faulting their buffers in."""

from __future__ import annotations

from tests.serverproc import run_python_json

# A search's query side (decode, prefilter codes, ORB feature) on four 1280x800 text-like pages,
# then the same again twice; the minor page faults of the repeats are reported (the first round
# warms the allocator up either way).
SCRIPT = r"""
import io, json, resource, sys
import numpy as np
from engine.matching import Matcher
from engine.memory import keep_freed_memory
from engine.picture import load_picture
from PIL import Image
tuned = keep_freed_memory() if sys.argv[1] == "tuned" else False
rng = np.random.default_rng(0)
pages = []
for _ in range(4):  # text-like pages: a screenshot's worth of keypoints
    page = np.full((800, 1280, 3), 245, np.uint8)
    for _ in range(600):
        y, x = rng.integers(0, 780), rng.integers(0, 1200)
        page[y:y + rng.integers(6, 14), x:x + rng.integers(20, 80)] = rng.integers(0, 120)
    out = io.BytesIO()
    Image.fromarray(page).save(out, "PNG", compress_level=1)
    pages.append(out.getvalue())
matcher = Matcher()
def search_side(data):  # what a search computes for its query
    query = matcher.query(load_picture(data))
    matcher.query_codes(query)
    query.features("orb")
for data in pages:
    search_side(data)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for data in pages * 2:
    search_side(data)
print(json.dumps({"tuned": tuned, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _faults(mode: str) -> dict:
    return run_python_json(SCRIPT, mode, drop=lambda name: name.startswith(("MALLOC_", "GLIBC_TUNABLES")))


def test_fixed_malloc_thresholds_stop_page_faults_on_repeated_extraction() -> None:
    default, tuned = _faults("default"), _faults("tuned")
    assert tuned["tuned"] is True
    assert default["faults"] > 1000  # glibc's dynamic thresholds: the buffers come back from the kernel
    assert tuned["faults"] < default["faults"] / 10


def test_operator_malloc_settings_win(monkeypatch) -> None:
    from engine import memory

    memory.keep_freed_memory.cache_clear()
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    try:
        assert memory.keep_freed_memory() is False
    finally:
        memory.keep_freed_memory.cache_clear()

"""The candidate index: exact Hamming distances, bounded shortlists, deletions, both backends."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.index import CandidateIndex, CodeTable

BACKENDS = ["faiss", "numpy"]


def _codes(n: int, nbytes: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(nbytes) for _ in range(n)]


def _hamming(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


def _flip(code: bytes, bits: int, seed: int) -> bytes:
    array = np.unpackbits(np.frombuffer(code, np.uint8))
    for position in random.Random(seed).sample(range(len(array)), bits):
        array[position] ^= 1
    return np.packbits(array).tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearest_codes_come_first_with_exact_distances(backend):
    codes = _codes(2000, 32, seed=1)
    index = CandidateIndex(backend)
    for n, code in enumerate(codes):
        index.upsert(f"p{n}", {"pdq": code})
    query = _flip(codes[42], 5, seed=2)
    shortlist = index.shortlist({"pdq": [query]}, 10)
    assert len(shortlist) == 10
    assert shortlist[0].id == "p42"
    assert shortlist[0].distance == pytest.approx(5 / 256)
    expected = sorted(_hamming(query, c) for c in codes)[:10]
    assert [round(c.distance * 256) for c in shortlist] == expected


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([8, 16, 32]), st.integers(1, 60))
def test_backends_agree_with_brute_force(seed, nbytes, k):
    codes = _codes(150, nbytes, seed)
    query = _codes(1, nbytes, seed + 1)[0]
    truth = sorted(_hamming(query, c) for c in codes)[:k]
    for backend in BACKENDS:
        table = CodeTable(nbytes, backend)
        for n, code in enumerate(codes):
            table.upsert(str(n), code)
        found = table.search([query], k)
        assert sorted(found.values()) == truth, backend
        assert all(_hamming(query, codes[int(i)]) == d for i, d in found.items())


@pytest.mark.parametrize("backend", BACKENDS)
def test_removed_pictures_never_come_back_even_after_compaction(backend):
    codes = _codes(5000, 8, seed=3)
    index = CandidateIndex(backend)
    for n, code in enumerate(codes):
        index.upsert(f"p{n}", {"dhash": code})
    removed = {f"p{n}" for n in range(0, 5000, 2)}  # enough tombstones to force a compaction
    for ident in removed:
        index.remove(ident)
    assert len(index) == 2500
    for probe in (0, 1, 2, 3, 4998, 4999):
        ids = [c.id for c in index.shortlist({"dhash": [codes[probe]]}, 20)]
        assert not removed & set(ids)
        if probe % 2:
            assert ids[0] == f"p{probe}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_union_over_code_names_and_orientations(backend):
    index = CandidateIndex(backend)
    a, b, other = _codes(3, 32, seed=4)
    index.upsert("by-pdq", {"pdq": a, "dhash": bytes(8)})
    index.upsert("by-dhash", {"pdq": other, "dhash": b"\xff" * 8})
    index.upsert("far", {"pdq": bytes(a[i] ^ 0xFF for i in range(32)), "dhash": b"\x0f" * 8})
    found = index.shortlist({"pdq": [b, a], "dhash": [b"\xff" * 8]}, 2)
    assert {c.id for c in found} == {"by-pdq", "by-dhash"}
    assert all(c.distance == 0 for c in found)


def test_shortlist_is_bounded_and_replacing_codes_moves_the_picture():
    index = CandidateIndex()
    for n, code in enumerate(_codes(300, 8, seed=5)):
        index.upsert(f"p{n}", {"dhash": code})
    assert len(index.shortlist({"dhash": [bytes(8)]}, 7)) == 7
    index.upsert("p1", {"dhash": bytes(8)})
    assert index.shortlist({"dhash": [bytes(8)]}, 1)[0].id == "p1"
    assert len(index) == 300


def test_without_codes_the_index_falls_back_to_every_picture():
    index = CandidateIndex()
    index.upsert("a", {})
    index.upsert("b", {"dhash": bytes(8)})
    assert {c.id for c in index.shortlist({}, 1)} == {"a", "b"}


def test_codes_of_another_length_are_refused():
    table = CodeTable(8)
    with pytest.raises(ValueError):
        table.upsert("x", bytes(9))


@pytest.mark.parametrize("backend", BACKENDS)
def test_bulk_extend_answers_like_one_by_one_upserts(backend):
    codes = _codes(3000, 8, seed=6)
    one_by_one, bulk = CandidateIndex(backend), CandidateIndex(backend)
    for n, code in enumerate(codes):
        one_by_one.upsert(f"p{n}", {"dhash": code})
    bulk.extend([(f"p{n}", {"dhash": code}) for n, code in enumerate(codes[:2000])])
    bulk.extend([(f"p{n}", {"dhash": code}) for n, code in enumerate(codes) if n >= 1500])  # overlap
    assert len(bulk) == 3000
    for probe in (0, 1999, 2500):
        query = {"dhash": [codes[probe]]}
        assert [c.distance for c in bulk.shortlist(query, 30)] == \
            [c.distance for c in one_by_one.shortlist(query, 30)]
        assert bulk.shortlist(query, 1)[0].id == f"p{probe}"
    with pytest.raises(ValueError):
        bulk.extend([("odd", {"dhash": bytes(9)})])
    assert "odd" not in bulk and len(bulk) == 3000

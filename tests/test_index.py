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


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_code_name_keeps_its_nearest_in_a_short_list(backend):
    """Rank fusion: a table whose codes put many pictures closer (64-bit region codes of a site's
    shared header) must not push out the picture another table ranks first."""
    index = CandidateIndex(backend)
    right = _codes(1, 32, seed=9)[0]
    flipped = bytes(b ^ 0b0100_0001 for b in right)  # 2 of 8 bits per byte: 25 % apart
    index.upsert("right", {"pdq": flipped, "regions0": b"\xff" * 8})
    for n in range(20):  # siblings: identical region code, far global code
        index.upsert(f"sibling{n}", {"pdq": bytes(b ^ 0xFF for b in right), "regions0": bytes(8)})
    found = index.shortlist({"pdq": [right], "regions0": [bytes(8)]}, 3)
    assert {c.id for c in found[:2]} == {"right", "sibling0"}  # each table's first, then the next ranks
    assert next(c for c in found if c.id == "right").distance == 0.25


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


_OPS = st.lists(st.tuples(st.sampled_from(["upsert", "remove", "extend", "compact"]),
                          st.integers(0, 14), st.integers(0, 2**16), st.booleans()), max_size=120)


@settings(max_examples=30, deadline=None)
@given(_OPS, st.integers(0, 2**16), st.integers(1, 12), st.sampled_from(BACKENDS))
def test_compact_index_gives_the_brute_force_shortlist_through_any_history(ops, query_seed, k, backend):
    """Random upserts (with and without each code), removes, bulk extends and compactions."""
    lengths = {"pdq": 32, "dhash": 8}
    rng = random.Random(query_seed)
    index, truth = CandidateIndex(backend), {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("engine.index._MIN_COMPACT", 2)  # compact after a few deletions
        for op, n, seed, both in ops:
            ident = f"p{n}"
            codes = dict(zip(lengths, _codes(1, 32, seed)[0:1] + _codes(1, 8, seed + 1), strict=True))
            codes = codes if both else {"dhash": codes["dhash"]}
            if op == "upsert":
                index.upsert(ident, codes)
                truth[ident] = codes
            elif op == "remove":
                index.remove(ident)
                truth.pop(ident, None)
            elif op == "extend":
                batch = [(ident, codes), (f"p{(n + 1) % 15}", {})]
                index.extend(batch)
                truth.update(batch)
            else:
                for table in index._tables.values():
                    table.compact()
    assert len(index) == len(truth) and sorted(index.ids()) == sorted(truth)
    assert all(ident in index for ident in truth) and "p15" not in index
    query = {name: [rng.randbytes(nbytes) for _ in range(2)] for name, nbytes in lengths.items()}
    best = {}  # brute force: smallest bit fraction over code names and query codes
    for ident, codes in truth.items():
        for name, code in codes.items():
            fraction = min(_hamming(q, code) for q in query[name]) / (8 * lengths[name])
            if fraction < best.get(ident, (2.0, ""))[0]:
                best[ident] = (fraction, name)
    everything = index.shortlist(query, len(truth) + 1)  # no per-table cut: exactly the union
    assert len(everything) == len(best)
    assert {c.id: c.distance for c in everything} == {i: f for i, (f, _) in best.items()}
    per_name = {name: sorted(min(_hamming(q, codes[name]) for q in query[name])
                             for codes in truth.values() if name in codes)[:k] for name in lengths}
    for name in lengths:  # a cut at k: the k smallest distances of that code name, each once
        found = index._tables[name].search(query[name], k) if name in index._tables else {}
        assert sorted(found.values()) == per_name[name]
        assert all(min(_hamming(q, truth[i][name]) for q in query[name]) == d for i, d in found.items())

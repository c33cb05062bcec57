"""The multi-index hash against brute force: every code within its radius found, same ids and
distances as the flat scan, adds/replacements/deletions after it was built, the automatic choice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.index import CandidateIndex, CodeTable
from engine.multihash import MultiIndexHash, radius


def _random_codes(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    return rng.integers(0, 256, (n, nbytes), dtype=np.uint8)


def _flipped(code: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    unpacked = np.unpackbits(code)
    unpacked[rng.choice(len(unpacked), bits, replace=False)] ^= 1
    return np.packbits(unpacked)


def _hamming(stored: np.ndarray, query: np.ndarray) -> np.ndarray:
    return np.unpackbits(stored ^ query, axis=1).sum(axis=1)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([8, 16, 32]))
def test_every_code_within_the_radius_is_found(seed, nbytes):
    rng = np.random.default_rng(seed)
    reach = radius(nbytes)
    query = _random_codes(rng, 1, nbytes)[0]
    near = [_flipped(query, int(bits), rng) for bits in rng.integers(0, reach + 1, 40)]
    stored = np.vstack([_random_codes(rng, 500, nbytes), *near])
    rows, sources = MultiIndexHash(stored).pairs(query[None, :], limit=len(stored) * 100)
    truth = set(np.flatnonzero(_hamming(stored, query) <= reach).tolist())
    assert truth <= set(rows.tolist())
    assert set(sources.tolist()) == {0}


def test_several_queries_each_find_their_own_neighbours():
    rng = np.random.default_rng(7)
    stored = _random_codes(rng, 3000, 8)
    queries = np.vstack([_flipped(stored[n], 8, rng) for n in (5, 900, 2999)])
    rows, sources = MultiIndexHash(stored).pairs(queries, limit=10**6)
    for number, row in enumerate((5, 900, 2999)):
        assert row in rows[sources == number]


def test_too_many_candidates_answer_none():
    stored = np.zeros((5000, 8), dtype=np.uint8)  # every code in one bucket
    assert MultiIndexHash(stored).pairs(stored[:1], limit=1000) is None


def _tables(nbytes: int, n: int, seed: int) -> tuple[CodeTable, CodeTable, np.ndarray]:
    """A multi-index hashed table and a flat one holding the same ``n`` random codes."""
    codes = _random_codes(np.random.default_rng(seed), n, nbytes)
    hashed, flat = CodeTable(nbytes, multihash_from=0), CodeTable(nbytes, multihash_from=None)
    for table in (hashed, flat):
        for number, code in enumerate(codes):
            table.upsert(f"p{number}", code.tobytes())
    hashed.prepare(wait=True)
    return hashed, flat, codes


def _within(found: dict[str, int], reach: int) -> dict[str, int]:
    return {ident: distance for ident, distance in found.items() if distance <= reach}


@pytest.mark.parametrize("nbytes", [8, 32])
def test_hashed_table_gives_the_flat_scans_ids_and_distances_within_the_radius(nbytes):
    hashed, flat, codes = _tables(nbytes, 4000, seed=nbytes)
    rng = np.random.default_rng(1)
    reach = radius(nbytes)
    for probe in (0, 17, 2500, 3999):
        query = _flipped(codes[probe], reach, rng).tobytes()
        from_hash, from_scan = hashed.search([query], 10), flat.search([query], 10)
        assert hashed.kind == "multihash" and flat.kind == "flat"
        assert from_hash[f"p{probe}"] == reach
        assert _within(from_hash, reach) == _within(from_scan, reach)
        assert all(from_scan.get(ident, distance) == distance for ident, distance in from_hash.items())


def test_adds_replacements_and_deletions_after_the_build_are_seen():
    hashed, flat, codes = _tables(8, 3000, seed=3)
    rng = np.random.default_rng(4)
    assert hashed.kind == "multihash"  # over the 3000 rows
    extra = _random_codes(rng, 200, 8)
    moved = _random_codes(rng, 1, 8)[0]
    for table in (hashed, flat):
        for number, code in enumerate(extra):
            table.upsert(f"new{number}", code.tobytes())  # scanned flat until the next build
        table.upsert("p10", moved.tobytes())  # a hashed row replaced
        table.remove("p20")
    assert hashed.kind == "multihash"
    for query in (extra[7], moved, codes[10], codes[20], codes[21]):
        query = _flipped(query, 3, rng).tobytes()
        assert _within(hashed.search([query], 10), 8) == _within(flat.search([query], 10), 8)
    assert "p10" not in hashed.search([codes[10].tobytes()], 3)
    assert "p20" not in hashed.search([codes[20].tobytes()], 3)
    assert hashed.search([moved.tobytes()], 1) == {"p10": 0}


def test_the_index_switches_to_multihash_by_size_and_back():
    rng = np.random.default_rng(5)
    codes = _random_codes(rng, 1200, 8)
    index = CandidateIndex(multihash_from=1000)
    index.extend([(f"p{n}", {"dhash": code.tobytes()}) for n, code in enumerate(codes[:999])])
    index.prepare()
    assert index.kinds() == {"dhash": "flat"}
    index.upsert("p999", {"dhash": codes[999].tobytes()})
    index.prepare(wait=True)
    assert index.kinds() == {"dhash": "multihash"}
    assert index.shortlist({"dhash": [codes[999].tobytes()]}, 3)[0].id == "p999"
    for n in range(600):
        index.remove(f"p{n}")
    index.prepare()
    assert index.kinds() == {"dhash": "flat"}  # under half the threshold: back to the flat scan
    assert index.shortlist({"dhash": [codes[700].tobytes()]}, 1)[0].id == "p700"


def test_codes_that_are_not_whole_words_stay_flat():
    table = CodeTable(12, multihash_from=0)
    for n in range(50):
        table.upsert(str(n), bytes([n]) * 12)
    table.prepare()
    assert table.kind == "flat"
    assert table.search([bytes([3]) * 12], 1) == {"3": 0}


def test_setting_reaches_the_index(redis, tmp_path, monkeypatch):
    from engine.config import load_settings
    from engine.core import Quaid

    monkeypatch.setenv("QUAID_INDEX_MULTIHASH_FROM", "-1")
    assert load_settings().index_multihash_from == -1
    for value, expected in ((-1, None), (0, 0), (123, 123)):
        quaid = Quaid(redis, load_settings(home=tmp_path / "home", index_multihash_from=value))
        assert quaid.mirror.index.multihash_from == expected  # after the index rebuild at start
        quaid.close()


def test_searches_stay_right_while_a_build_runs_and_a_stale_build_is_dropped(monkeypatch):
    import threading

    from engine import multihash

    release = threading.Event()
    real_init = multihash.MultiIndexHash.__init__

    def slow_init(self, codes, *args):
        release.wait(30)
        real_init(self, codes, *args)

    monkeypatch.setattr(multihash.MultiIndexHash, "__init__", slow_init)
    rng = np.random.default_rng(9)
    codes = _random_codes(rng, 2000, 8)
    table = CodeTable(8, multihash_from=0)
    for number, code in enumerate(codes):
        table.upsert(f"p{number}", code.tobytes())
    table.prepare()  # the build starts and blocks
    assert table.kind == "flat"
    moved = _random_codes(rng, 1, 8)[0]
    table.upsert("p3", moved.tobytes())  # a row the build reads: tombstoned and appended, not overwritten
    assert table.search([codes[4].tobytes()], 1) == {"p4": 0}
    release.set()
    table.prepare(wait=True)
    assert table.kind == "multihash"
    assert table.search([moved.tobytes()], 1) == {"p3": 0}
    assert "p3" not in table.search([codes[3].tobytes()], 3)

    release.clear()
    for number in range(600, 2000, 2):
        table.upsert(f"p{number}", _random_codes(rng, 1, 8)[0].tobytes())  # tail past 1/32: rebuild due
    table.prepare()
    for number in range(0, 1800):  # past 1/8 tombstones: compacted, rows renumbered
        table.remove(f"p{number}")
    release.set()
    table.prepare(wait=True)  # the build over the old rows is thrown away, a new one made
    assert table.kind == "multihash"
    assert table.search([codes[1999].tobytes()], 1) == {"p1999": 0}
    assert all(int(ident[1:]) >= 1800 for ident in table.search([codes[1900].tobytes()], 20))

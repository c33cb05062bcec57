"""The compact key tables under the index and cluster map: a dict's behaviour, in numpy arrays."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.keytable import CLUSTERS, INDEX, IdTable, KeyTable


def _colliding_key(prefix: int, tail: int) -> bytes:
    """32-byte keys sharing their first 8 bytes (so their home bucket) when ``prefix`` is equal."""
    return prefix.to_bytes(8, "little") + hashlib.sha256(tail.to_bytes(4, "little")).digest()[:24]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 20)), max_size=400))
def test_key_table_behaves_like_a_dict_through_collisions_deletions_and_growth(ops):
    table, reference = KeyTable(32), {}
    for add, prefix, tail in ops:
        key = _colliding_key(prefix, tail)
        if add:
            slot, new = table.add(key)
            assert new == (key not in reference)
            assert reference.setdefault(key, slot) == slot
        else:
            assert table.remove(key) == reference.pop(key, -1)
        assert len(table) == len(reference)
    for prefix in range(6):
        for tail in range(21):
            key = _colliding_key(prefix, tail)
            assert table.find(key) == reference.get(key, -1)
    assert sorted(table.live().tolist()) == sorted(reference.values())
    assert all(table.key(slot) == key for key, slot in reference.items())


def test_many_keys_survive_rehashing_and_freed_slots_are_reused():
    table = KeyTable(8)
    keys = [n.to_bytes(8, "little", signed=True) for n in range(-5000, 5000)]  # cluster numbers
    slots = {key: table.add(key)[0] for key in keys}
    assert len(set(slots.values())) == len(keys) == len(table)
    assert all(table.find(key) == slot for key, slot in slots.items())
    removed = keys[::3]
    freed = {table.remove(key) for key in removed}
    assert all(table.find(key) == -1 for key in removed)
    assert all(table.find(key) == slots[key] for key in keys if key not in removed)
    again = {table.add(b"new-" + n.to_bytes(4, "little"))[0] for n in range(len(removed))}
    assert again == freed  # no slot is wasted after deletions
    with pytest.raises(ValueError):
        table.add(bytes(9))


def test_id_table_round_trips_every_string_and_stores_sha256_ids_as_digests():
    ids = IdTable()
    canonical = hashlib.sha256(b"picture").hexdigest()
    others = ["p1", "", "by-pdq", canonical.upper(), "x" * 64, "é€"]
    slots = {ident: ids.acquire(ident, INDEX)[0] for ident in [canonical, *others]}
    assert {ids.name(slot) for slot in slots.values()} == set(slots)
    assert ids.digest(canonical) == (bytes.fromhex(canonical), True)
    assert not ids.digest(canonical.upper())[1]
    assert ids.find(canonical.upper(), INDEX) != ids.find(canonical, INDEX)
    assert ids.find("absent", INDEX) == -1


def test_a_shared_id_is_freed_only_when_its_last_owner_lets_go():
    ids = IdTable()
    slot, new = ids.acquire("a", INDEX)
    assert new and ids.acquire("a", CLUSTERS) == (slot, True)
    assert ids.acquire("a", INDEX) == (slot, False)
    ids.release(slot, INDEX)
    assert ids.find("a", INDEX) == -1 and ids.find("a", CLUSTERS) == slot
    assert ids.held_by(CLUSTERS).tolist() == [slot] and ids.held_by(INDEX).tolist() == []
    ids.release(slot, CLUSTERS)
    assert len(ids) == 0 and ids.find("a", CLUSTERS) == -1
    assert ids.acquire("b", INDEX)[0] == slot and ids.name(slot) == "b"


def test_random_ids_at_scale_keep_their_slots():
    ids = IdTable()
    rng = random.Random(7)
    names = [rng.randbytes(32).hex() for _ in range(20_000)]
    slots = [ids.acquire(name, INDEX)[0] for name in names]
    assert len(set(slots)) == len(names)
    assert ids.names(slots) == names
    assert [ids.find(name, INDEX) for name in names[::97]] == slots[::97]


def test_keys_differing_only_in_their_last_bytes_still_spread_over_the_buckets():
    """Sequential ids (``f"{n:064x}"``, as benchmarks and tests make) must not pile up in one probe run."""
    table = KeyTable(32)
    keys = [bytes.fromhex(f"{n:064x}") for n in range(50_000)]
    for key in keys:
        table.add(key)
    slots = table.live()
    homes = table._homes(table.keys(slots))
    assert homes.tolist() == [table._home(table.key(int(s))) for s in slots]  # scalar == vectorised
    where = np.empty(len(table._buckets), dtype=np.int64)
    where[table._buckets[table._buckets >= 0]] = np.flatnonzero(table._buckets >= 0)
    displacement = (where[slots] - homes) % len(table._buckets)
    assert displacement.mean() < 3  # linear probing at load <= 0.7 expects ~1.2


def test_bulk_add_and_find_agree_with_one_by_one():
    rng = random.Random(11)
    keys = [rng.randbytes(32) for _ in range(5000)]
    one, bulk = KeyTable(32), KeyTable(32)
    for key in keys[:1000]:
        one.add(key)
    bulk.add_many(np.frombuffer(b"".join(keys[:1000]), np.uint8).reshape(-1, 32))
    for key in keys[:300]:  # freed slots must be reused by the bulk path too
        assert one.remove(key) >= 0 and bulk.remove(key) >= 0
    expected = [one.add(key) for key in keys[200:]]  # some present, most new, past a rehash
    slots, new = bulk.add_many(np.frombuffer(b"".join(keys[200:]), np.uint8).reshape(-1, 32))
    assert sorted(slots.tolist()) == sorted(s for s, _ in expected)
    assert new.tolist() == [n for _, n in expected]
    assert bulk.find_many(np.frombuffer(b"".join(keys), np.uint8).reshape(-1, 32)).tolist() == \
        [bulk.find(key) for key in keys]
    assert len(bulk) == len(one) == 4800

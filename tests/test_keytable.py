"""The compact key tables under the index and cluster map: a dict's behaviour, in numpy arrays."""

from __future__ import annotations

import hashlib
import random

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

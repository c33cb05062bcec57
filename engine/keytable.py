"""Compact hash tables from fixed-width keys to dense slot numbers, held in numpy arrays.

Why: the in-memory candidate index and cluster map of every ``quaid serve`` process hold one
entry per stored picture. As Python objects (a 64-character ``str`` id in several dicts and
lists, a boxed ``int`` per row) that cost ~825 bytes per picture (``bench_capacity``), ~8 GB
at 10M pictures. Here a key is stored once as raw bytes in a ``(slots, width)`` uint8 array
and found through an open-addressing table of int32 slot numbers: ~50 bytes per key, and
everything keyed by the slot (codes, cluster, time added) lives in plain arrays too.

:class:`KeyTable` is linear probing with Fibonacci hashing (Knuth, TAOCP vol. 3, §6.4:
multiply by 2^64/φ, keep the top bits) of the key's 64-bit words folded into one (each
word times its own odd constant, summed mod 2^64, so that ids differing only in their last
bytes, such as ``f"{n:064x}"`` test ids, still spread), load
at most 0.7, and backward-shift deletion (Knuth's Algorithm R) so that no bucket tombstone
ever slows lookups. Freed slots are reused by the next key, so per-slot arrays never need
renumbering.

:class:`IdTable` interns picture ids (SHA-256 hex, 64 characters) as their 32-byte digests
and lets two owners (the candidate index and the cluster map) share one table: each slot
carries a bit per owner and is freed when the last owner lets go.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

_GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / golden ratio, odd: Fibonacci hashing
_FOLD = (1, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)  # odd, per key word (xxHash's primes)
_MASK64 = (1 << 64) - 1
_MAX_LOAD = 0.7  # linear probing: ~2 probes per hit, ~6 per miss at this load (Knuth 6.4)
_MIN_SLOTS = 1024


def grown(array: np.ndarray, length: int, fill: int | float = 0) -> np.ndarray:
    """``array`` with at least ``length`` rows: 1.5x growth, new rows set to ``fill``."""
    if len(array) >= length:
        return array
    bigger = np.empty((max(length, len(array) * 3 // 2, _MIN_SLOTS), *array.shape[1:]), array.dtype)
    bigger[: len(array)] = array
    bigger[len(array):] = fill
    return bigger


def release_free_memory() -> bool:
    """Give the C heap's free pages back to the OS (glibc ``malloc_trim``); False where unavailable.

    Why: an index rebuild allocates batch buffers and regrows its arrays many times; glibc
    raises its mmap threshold as large blocks are freed (up to 32 MB), so later blocks
    come from the heap and leave holes there that stay resident. Measured at 1M pictures
    (``bench_capacity``): ~80 bytes per picture of RSS released by one call after loading.
    """
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return False
    trim(0)
    return True


class KeyTable:
    """Fixed-width byte keys <-> dense slots in ``[0, capacity)``; a freed slot is reused."""

    def __init__(self, width: int) -> None:
        if width % 8 or not 8 <= width <= 8 * len(_FOLD):
            raise ValueError(f"keys are 1 to {len(_FOLD)} words of 8 bytes")
        self.width = width
        self._keys = np.zeros((_MIN_SLOTS, width), dtype=np.uint8)
        self._live = np.zeros(_MIN_SLOTS, dtype=bool)
        self._free = np.zeros(0, dtype=np.int32)  # stack of freed slots
        self._nfree = 0
        self._top = 0  # slots [0, top) have been handed out at least once
        self._count = 0
        self._resize(_MIN_SLOTS * 2)

    def __len__(self) -> int:
        return self._count

    @property
    def capacity(self) -> int:
        """Slots are below this; arrays indexed by slot must have at least this many rows."""
        return len(self._keys)

    def find(self, key: bytes) -> int:
        """The slot of ``key``, or -1."""
        buckets, mask = self._buckets, self._mask
        pos = self._home(key)
        while True:
            slot = int(buckets[pos])
            if slot < 0:
                return -1
            if self._keys[slot].tobytes() == key:
                return slot
            pos = (pos + 1) & mask

    def add(self, key: bytes) -> tuple[int, bool]:
        """The slot of ``key`` and whether it was new (then it takes a freed or fresh slot)."""
        if len(key) != self.width:
            raise ValueError(f"key of {len(key)} bytes in a table of {self.width}-byte keys")
        buckets, mask = self._buckets, self._mask
        pos = self._home(key)
        while True:
            slot = int(buckets[pos])
            if slot < 0:
                break
            if self._keys[slot].tobytes() == key:
                return slot, False
            pos = (pos + 1) & mask
        slot = self._take_slot()
        self._keys[slot] = np.frombuffer(key, dtype=np.uint8)
        self._live[slot] = True
        buckets[pos] = slot
        self._count += 1
        if self._count > _MAX_LOAD * len(buckets):
            self._resize(len(buckets) * 2)
        return slot, True

    def remove(self, key: bytes) -> int:
        """Forget ``key``; returns its former slot (now free), or -1 when absent."""
        slot = self.find(key)
        if slot < 0:
            return -1
        self._unlink(self._bucket_of(slot))
        self._live[slot] = False
        self._keys[slot] = 0
        if self._nfree == len(self._free):
            self._free = grown(self._free, self._nfree + 1)
        self._free[self._nfree] = slot
        self._nfree += 1
        self._count -= 1
        return slot

    def find_many(self, keys: np.ndarray) -> np.ndarray:
        """:meth:`find` of every row of ``keys`` (a ``(n, width)`` uint8 array), vectorised."""
        found = np.full(len(keys), -1, dtype=np.int64)
        pos = self._homes(keys)
        active = np.arange(len(keys))
        while len(active):  # one round per probe step; runs are short at load <= 0.7
            slots = self._buckets[pos[active]].astype(np.int64)
            occupied = slots >= 0
            active, slots = active[occupied], slots[occupied]
            same = (self._keys[slots] == keys[active]).all(axis=1)
            found[active[same]] = slots[same]
            active = active[~same]
            pos[active] = (pos[active] + 1) & self._mask
        return found

    def add_many(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`add` of every row of ``keys`` (distinct rows), vectorised: (slots, which were new)."""
        if keys.ndim != 2 or keys.shape[1] != self.width:
            raise ValueError(f"expected an (n, {self.width}) array of keys, got {keys.shape}")
        slots = self.find_many(keys)
        missing = np.flatnonzero(slots < 0)
        fresh = self._take_slots(len(missing))
        self._keys[fresh] = keys[missing]
        self._live[fresh] = True
        self._count += len(fresh)
        slots[missing] = fresh
        if self._count > _MAX_LOAD * len(self._buckets):
            nbuckets = len(self._buckets)
            while self._count > _MAX_LOAD * nbuckets:
                nbuckets *= 2
            self._resize(nbuckets)
        else:
            self._place(fresh.astype(np.int32), self._homes(self._keys[fresh]))
        new = np.zeros(len(keys), dtype=bool)
        new[missing] = True
        return slots, new

    def key(self, slot: int) -> bytes:
        return self._keys[slot].tobytes()

    def keys(self, slots: np.ndarray) -> np.ndarray:
        """The keys of ``slots`` as a ``(len(slots), width)`` uint8 array."""
        return self._keys[slots]

    def live(self) -> np.ndarray:
        """Every slot holding a key, ascending."""
        return np.flatnonzero(self._live[: self._top])

    # --- internals ----------------------------------------------------------------------

    def _home(self, key: bytes) -> int:
        folded = sum(int.from_bytes(key[n: n + 8], "little") * _FOLD[n // 8] for n in range(0, len(key), 8))
        return ((folded * _GOLDEN) & _MASK64) >> self._shift

    def _homes(self, keys: np.ndarray) -> np.ndarray:
        """:meth:`_home` of every row of ``keys`` (uint64 arithmetic wraps mod 2^64, as intended)."""
        words = np.ascontiguousarray(keys).view("<u8")
        folded = (words * np.array(_FOLD[: words.shape[1]], dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
        return ((folded * np.uint64(_GOLDEN)) >> np.uint64(self._shift)).astype(np.int64)

    def _bucket_of(self, slot: int) -> int:
        pos = self._home(self.key(slot))
        while int(self._buckets[pos]) != slot:
            pos = (pos + 1) & self._mask
        return pos

    def _unlink(self, hole: int) -> None:
        """Empty bucket ``hole`` and shift later entries of its probe run back (Algorithm R)."""
        buckets, mask = self._buckets, self._mask
        buckets[hole] = -1
        pos = hole
        while True:
            pos = (pos + 1) & mask
            slot = int(buckets[pos])
            if slot < 0:
                return
            home = self._home(self.key(slot))
            # The entry may stay unless its home lies cyclically in (hole, pos].
            stays = (hole < home <= pos) if hole <= pos else (home > hole or home <= pos)
            if not stays:
                buckets[hole] = slot
                buckets[pos] = -1
                hole = pos

    def _take_slot(self) -> int:
        if self._nfree:
            self._nfree -= 1
            return int(self._free[self._nfree])
        if self._top == len(self._keys):
            self._keys = grown(self._keys, self._top + 1)
            self._live = grown(self._live, len(self._keys), False)
        self._top += 1
        return self._top - 1

    def _take_slots(self, count: int) -> np.ndarray:
        """``count`` slots for new keys: freed ones first, then fresh ones."""
        reused = min(count, self._nfree)
        self._nfree -= reused
        taken = self._free[self._nfree: self._nfree + reused].astype(np.int64)
        fresh = np.arange(self._top, self._top + count - reused, dtype=np.int64)
        self._top += len(fresh)
        self._keys = grown(self._keys, self._top)
        self._live = grown(self._live, len(self._keys), False)
        return np.concatenate([taken, fresh])

    def _resize(self, nbuckets: int) -> None:
        """Rehash every live key into ``nbuckets`` (a power of two), vectorised."""
        bits = nbuckets.bit_length() - 1
        self._shift, self._mask = 64 - bits, nbuckets - 1
        self._buckets = np.full(nbuckets, -1, dtype=np.int32)
        slots = self.live().astype(np.int32)
        self._place(slots, self._homes(self._keys[slots]))

    def _place(self, slots: np.ndarray, pos: np.ndarray) -> None:
        """Put ``slots`` (keys not in the buckets yet) at their first free bucket from ``pos`` on."""
        buckets = self._buckets
        while len(slots):  # each round places one key in every free bucket some key is at
            free = np.flatnonzero(buckets[pos] < 0)
            buckets[pos[free]] = slots[free]  # several keys at one bucket: one of them is written
            placed = np.zeros(len(slots), dtype=bool)
            placed[free] = buckets[pos[free]] == slots[free]
            slots, pos = slots[~placed], (pos[~placed] + 1) & self._mask


INDEX, CLUSTERS = 1, 2  # owner bits of an IdTable slot


class IdTable:
    """Picture ids interned once, as 32-byte SHA-256 digests, shared by several owners.

    A picture id is the SHA-256 hex of its bytes (:mod:`engine.store.records`). Any other
    string (tests, ids from elsewhere) is keyed by a domain-separated SHA-256 of it and
    kept verbatim in a small side dict, so every string round-trips.
    """

    def __init__(self) -> None:
        self._table = KeyTable(32)
        self._owners = np.zeros(self._table.capacity, dtype=np.uint8)
        self._foreign: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._table)

    @property
    def capacity(self) -> int:
        return self._table.capacity

    @staticmethod
    def digest(picture_id: str) -> tuple[bytes, bool]:
        """(32-byte key, whether the id is a canonical lowercase SHA-256 hex)."""
        if len(picture_id) == 64:
            try:
                raw = bytes.fromhex(picture_id)
            except ValueError:
                raw = b""
            if raw and raw.hex() == picture_id:
                return raw, True
        text = picture_id.encode("utf-8", "surrogatepass")
        return hashlib.sha256(b"quaid-foreign-id\0" + text).digest(), False

    def find(self, picture_id: str, owner: int) -> int:
        """The slot of ``picture_id`` when ``owner`` holds it, else -1."""
        slot = self._table.find(self.digest(picture_id)[0])
        return slot if slot >= 0 and self._owners[slot] & owner else -1

    def acquire(self, picture_id: str, owner: int) -> tuple[int, bool]:
        """The slot of ``picture_id`` for ``owner``, and whether ``owner`` did not hold it before."""
        key, canonical = self.digest(picture_id)
        slot, new = self._table.add(key)
        if new:
            self._owners = grown(self._owners, self._table.capacity)
            self._owners[slot] = 0
            if not canonical:
                self._foreign[slot] = picture_id
        held = bool(self._owners[slot] & owner)
        self._owners[slot] |= owner
        return slot, not held

    def acquire_many(self, picture_ids: Sequence[str], owner: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`acquire` of distinct ids, vectorised: (slots, which ``owner`` did not hold before)."""
        joined = "".join(picture_ids)
        canonical = len(joined) == 64 * len(picture_ids) and all(len(i) == 64 for i in picture_ids)
        try:
            raw = bytes.fromhex(joined) if canonical else b""
        except ValueError:
            raw = b""
        if canonical and raw.hex() == joined:
            keys, foreign = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32), {}
        else:
            digests = [self.digest(i) for i in picture_ids]
            keys = np.frombuffer(b"".join(d for d, _ in digests), dtype=np.uint8).reshape(-1, 32)
            foreign = {n: picture_ids[n] for n, (_, ok) in enumerate(digests) if not ok}
        return self.acquire_digests(keys, owner, foreign)

    def acquire_digests(self, keys: np.ndarray, owner: int, foreign: Mapping[int, str] | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`acquire_many` of distinct ids given as their ``(n, 32)`` digests (:meth:`digest`);
        ``foreign``: row -> the id of a row that is not a canonical SHA-256 hex."""
        slots, new = self._table.add_many(keys)
        self._owners = grown(self._owners, self._table.capacity)
        self._owners[slots[new]] = 0
        for n, picture_id in (foreign or {}).items():
            self._foreign.setdefault(int(slots[n]), picture_id)
        fresh = (self._owners[slots] & owner) == 0
        self._owners[slots] |= np.uint8(owner)
        return slots, fresh

    def share(self, slots: np.ndarray, owner: int) -> None:
        """``owner`` takes ``slots``, which another owner holds already (a snapshot being loaded)."""
        self._owners[slots] |= np.uint8(owner)

    def digests(self, slots: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
        """The ``(n, 32)`` digests of ``slots``, and row -> id of the rows that are foreign ids."""
        foreign = {n: self._foreign[slot] for n, slot in enumerate(slots.tolist()) if slot in self._foreign} \
            if self._foreign else {}
        return self._table.keys(slots), foreign

    def release(self, slot: int, owner: int) -> None:
        """``owner`` lets go of ``slot``; the slot is freed once no owner holds it."""
        self._owners[slot] &= ~np.uint8(owner)
        if not self._owners[slot]:
            self._foreign.pop(slot, None)
            self._table.remove(self._table.key(slot))

    def name(self, slot: int) -> str:
        foreign = self._foreign.get(slot)
        return foreign if foreign is not None else self._table.key(slot).hex()

    def names(self, slots: Iterable[int]) -> list[str]:
        """Ids of ``slots``, in order (one hex conversion for all: ~0.2 s per million)."""
        slots = np.fromiter(slots, dtype=np.int64)
        text = self._table.keys(slots).tobytes().hex()
        found = [text[n: n + 64] for n in range(0, len(text), 64)]
        if self._foreign:
            for n, slot in enumerate(slots.tolist()):
                if slot in self._foreign:
                    found[n] = self._foreign[slot]
        return found

    def held_by(self, owner: int) -> np.ndarray:
        """Every slot ``owner`` holds, ascending."""
        live = self._table.live()
        return live[(self._owners[live] & owner) != 0]

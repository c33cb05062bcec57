"""The disk tier: the large per-picture data that no search scans, kept out of Redis's RAM.

Why: a stored screenshot's ORB feature (keypoints, descriptors and a grey thumbnail for the
aligned difference, ~50 KB) and its display thumbnail (~13 KB) are read only for the few
candidates a search verifies and for the pages that show them, yet in Redis they cost RAM for
every picture. Redis keeps what every search needs (records, index codes, the cheap features a
shortlist is scored with); the large values go to a tier chosen by ``settings.bulk_store``:

* ``local`` — an LMDB database in ``<home>/bulk`` (crash-safe copy-on-write B-tree, readers in
  many processes, one writer at a time; each commit is fsynced). One host.
* ``redis://…`` / ``rediss://…`` / ``unix://…`` — a second Redis (or Valkey/Kvrocks) server that
  several service hosts share.
* ``redis`` — no tier: the values stay in the records' Redis, as one hash field each.
* ``auto`` (default) — what the store was first used with (the Redis key ``quaid:tier`` records
  it: another process on the same Redis then reads and writes the same tier); for a new store,
  ``local`` with the embedded Redis and ``redis`` with ``QUAID_REDIS_URL`` (several hosts sharing a
  Redis cannot share a local disk: set ``local`` or a second server explicitly).

In the Redis hash, a value moved to the tier is replaced by a *reference*: :data:`REF_PREFIX`
and the first 32 hex digits of the value's SHA-256. The tier's key is ``<id>/<field>/<digest>``:
the picture id makes deleting a picture delete only its own data, the digest makes a rewrite
(``quaid reindex``) land under a new key, so the Redis swap that follows is the single step that
switches a picture from old to new. Writes go to the tier first and to Redis second, deletes the
other way round: a process killed between the two leaves at worst *unreferenced* tier data,
never a record without its data (:func:`engine.store.tier_check.check_tier` finds and removes it).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

import redis

from engine.errors import BadInput, StoreUnavailable
from engine.store.private import FILE_MODE, narrow_tree, private_dir

REF_PREFIX = b"quaid-tier:"
REF_LENGTH = len(REF_PREFIX) + 32
LMDB_MAP_BYTES = 1 << 40  # address space reserved for the LMDB file (1 TiB; the file grows as needed)
CHOICES = ("auto", "local", "redis")
_URL_SCHEMES = ("redis://", "rediss://", "unix://")


class Tier(Protocol):
    """A key-value store for large values; ``put`` is durable when it returns."""

    description: str

    def put(self, items: Mapping[str, bytes]) -> None: ...

    def get(self, tier_keys: Iterable[str]) -> dict[str, bytes]: ...

    def delete(self, tier_keys: Iterable[str]) -> None: ...

    def keys(self) -> Iterator[str]: ...

    def size_bytes(self) -> int | None: ...

    def close(self) -> None: ...


def reference(value: bytes) -> bytes:
    """What Redis keeps in place of ``value``."""
    return REF_PREFIX + hashlib.sha256(value).hexdigest()[:32].encode()


def is_reference(value: bytes | None) -> bool:
    return value is not None and len(value) == REF_LENGTH and value.startswith(REF_PREFIX)


def tier_key(picture_id: str, field: str, ref: bytes) -> str:
    """The tier key of a picture's field from the reference Redis holds."""
    return f"{picture_id}/{field}/{ref[len(REF_PREFIX):].decode()}"


def picture_of(key: str) -> str:
    return key.split("/", 1)[0]


class LocalTier:
    """LMDB under ``path`` (0700; its files 0600).

    LMDB forbids opening one database twice in a process (closing one copy drops the other's
    locks), so instances on the same path share one environment, counted; a forked child opens its
    own (an environment must not cross a fork).
    """

    _shared: dict[tuple[int, str], list] = {}  # (pid, path) -> [environment, users]
    _lock = threading.Lock()

    def __init__(self, path: Path, map_size: int = LMDB_MAP_BYTES) -> None:
        self.path = private_dir(Path(path))
        self._slot = (os.getpid(), str(self.path.resolve()))
        with self._lock:
            if self._slot not in self._shared:
                self._shared[self._slot] = [self._open(map_size), 0]
            self._shared[self._slot][1] += 1
            self.env = self._shared[self._slot][0]
        self._closed = False
        self.description = f"local ({self.path})"

    def _open(self, map_size: int):
        import lmdb

        try:
            env = lmdb.open(str(self.path), map_size=map_size, subdir=True, mode=FILE_MODE,
                            readahead=False, max_readers=1024, max_spare_txns=4)
        except lmdb.Error as exc:
            raise StoreUnavailable(f"cannot open the disk tier in {self.path}: {exc}") from None
        narrow_tree(self.path)
        return env

    def put(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return
        with self.env.begin(write=True) as txn:
            for key, value in items.items():
                txn.put(key.encode(), value)

    def get(self, tier_keys: Iterable[str]) -> dict[str, bytes]:
        out = {}
        with self.env.begin(buffers=False) as txn:
            for key in tier_keys:
                value = txn.get(key.encode())
                if value is not None:
                    out[key] = value
        return out

    def delete(self, tier_keys: Iterable[str]) -> None:
        tier_keys = list(tier_keys)
        if not tier_keys:
            return
        with self.env.begin(write=True) as txn:
            for key in tier_keys:
                txn.delete(key.encode())

    def keys(self) -> Iterator[str]:
        with self.env.begin() as txn:
            for key in txn.cursor().iternext(keys=True, values=False):
                yield bytes(key).decode()

    def size_bytes(self) -> int:
        """Bytes the database file takes on disk (allocated blocks: the file is sparse)."""
        return sum(p.stat().st_blocks * 512 for p in self.path.iterdir() if p.is_file())

    def close(self) -> None:
        with self._lock:
            entry = self._shared.get(self._slot)
            if self._closed or entry is None or entry[0] is not self.env:
                return
            self._closed = True
            entry[1] -= 1
            if entry[1] == 0:
                del self._shared[self._slot]
                self.env.close()


class RedisTier:
    """A second Redis server: ``quaid:tier:{<id>}/<field>/<digest>`` strings (one slot per picture)."""

    PREFIX = "quaid:tier:"

    def __init__(self, url: str) -> None:
        from engine.config import redact_url

        self.description = redact_url(url) or ""
        try:
            self.redis = redis.Redis.from_url(url)
            self.redis.ping()
        except (redis.RedisError, OSError, ValueError) as exc:
            raise StoreUnavailable(f"cannot reach the disk tier at {self.description}: {exc}") from None

    def _name(self, key: str) -> str:
        ident, rest = key.split("/", 1)
        return f"{self.PREFIX}{{{ident}}}/{rest}"

    def put(self, items: Mapping[str, bytes]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(self._name(key), value)
        pipe.execute()

    def get(self, tier_keys: Iterable[str]) -> dict[str, bytes]:
        tier_keys = list(tier_keys)
        pipe = self.redis.pipeline(transaction=False)
        for key in tier_keys:
            pipe.get(self._name(key))
        return {k: v for k, v in zip(tier_keys, pipe.execute(), strict=True) if v is not None}

    def delete(self, tier_keys: Iterable[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key in tier_keys:
            pipe.delete(self._name(key))
        pipe.execute()

    def keys(self) -> Iterator[str]:
        for name in self.redis.scan_iter(match=self.PREFIX + "*", count=1000):
            text = name.decode()[len(self.PREFIX):]
            ident, rest = text.split("/", 1)
            yield f"{ident.strip('{}')}/{rest}"

    def size_bytes(self) -> int | None:
        return None  # a shared server's memory is not this store's alone

    def close(self) -> None:
        self.redis.close()


def open_tier(choice: str, home: Path, embedded: bool, client: redis.Redis | None = None) -> Tier | None:
    """The tier ``settings.bulk_store`` names; None keeps large values in the records' Redis.

    With ``client``, ``auto`` follows the tier the store declares, and the first user declares it.
    """
    declared = _declared(client)
    if choice == "auto" and declared is not None:
        return _follow(declared)
    explicit = choice != "auto"
    if not explicit:
        choice = "local" if embedded else "redis"
    tier = _open(choice, home)
    if client is not None:  # a choice made in the settings is what other processes must follow now
        client.set(DECLARED, _declaration(tier), nx=not explicit)
    return tier


DECLARED = "quaid:tier"  # which tier the store's references point into (engine.store.keys layout)


def _open(choice: str, home: Path) -> Tier | None:
    if choice == "redis":
        return None
    if choice == "local":
        return LocalTier(private_dir(Path(home).absolute()) / "bulk")
    if choice.startswith(_URL_SCHEMES):
        return RedisTier(choice)
    raise BadInput(f"setting bulk_store: {choice!r} is not one of {', '.join(CHOICES)} or a redis:// URL")


def _declaration(tier: Tier | None) -> str:
    if tier is None:
        return "redis"
    if isinstance(tier, LocalTier):
        return f"local:{tier.path.absolute()}"
    return f"server:{tier.description}"  # credentials removed: never stored


def _declared(client: redis.Redis | None) -> str | None:
    value = client.get(DECLARED) if client is not None else None
    return value.decode() if value is not None else None


def _follow(declared: str) -> Tier | None:
    """Open the tier another process declared; refuse one this process cannot reach."""
    kind, _, where = declared.partition(":")
    if kind == "redis":
        return None
    if kind == "local" and Path(where).is_dir():
        return LocalTier(Path(where))
    raise StoreUnavailable(f"this store keeps large per-picture data in {kind} tier {where}, which this "
                           "process cannot open: set QUAID_BULK_STORE (local, or the tier server's URL)")

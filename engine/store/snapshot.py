"""Index snapshots: the candidate index and cluster map on local disk, so that a restart takes seconds.

Why: without one, every process start reads every record back from Redis (~17 000 pictures/s:
a minute at 1M stored pictures, ten at 10M). A snapshot is the in-memory index as arrays, with
the change-stream position it reflects; at start the process loads it, checks it, and applies
the changes made since from the stream (:meth:`engine.store.mirror.Mirror.start`).

File: ``$QUAID_HOME/index/snapshot.bin``, 0600 in a 0700 folder (:mod:`engine.store.private`),
written to a temporary file, flushed to disk and renamed over the previous one, so a crash at
any point leaves the old snapshot or the new one. Layout, no pickle anywhere::

    b"QUAIDIX1" | header length (uint32, little-endian) | header (JSON) | arrays | SHA-256 of all before

The header names each array (a fixed set of dtypes, little-endian), its shape and offset.

A snapshot is used only when all of these hold, else the index is rebuilt from Redis and the log
says which failed (:class:`Refused`): the format version; the checksum; the store's identity (a
random id kept in Redis at :data:`engine.store.keys.STORE_ID`, so a snapshot of another store, or
of this one before it was flushed, is foreign); the feature versions of the running algorithms
(which pictures are stale depends on them); and the change-stream position (every event after it
still in the stream, and the stream not older than it: a store restored from an older backup).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis

from engine.errors import StoreUnavailable
from engine.store import keys
from engine.store.private import FILE_MODE, check_private, private_dir

FORMAT = 1
MAGIC = b"QUAIDIX1"
_DTYPES = {"|u1", "<i4", "<i8", "<f8"}  # the only array types a snapshot may hold
_DIGEST = 32


class Refused(Exception):
    """The snapshot cannot be used; the message says why (one line, for the log)."""


@dataclass
class Snapshot:
    """What the mirror saves: a JSON-safe header and named arrays."""

    header: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def default_path(home: Path) -> Path:
    return Path(home) / "index" / "snapshot.bin"


def store_identity(client: redis.Redis) -> str:
    """The store's random id, created by the first process that asks (SET NX: all agree)."""
    client.set(keys.STORE_ID, secrets.token_hex(16), nx=True)
    value = client.get(keys.STORE_ID)
    return value.decode() if isinstance(value, bytes) else str(value)


def save(path: Path, snapshot: Snapshot) -> int:
    """Write ``snapshot`` atomically (temporary file, fsync, rename); returns its size in bytes."""
    private_dir(path.parent.parent)  # the data directory first: with an external Redis it may not exist
    private_dir(path.parent)
    arrays, specs, offset = [], [], 0
    for name, array in snapshot.arrays.items():
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        if array.dtype.str not in _DTYPES:
            raise ValueError(f"array {name} of type {array.dtype.str} cannot be saved")
        arrays.append((name, array))
        specs.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape), "offset": offset})
        offset += array.nbytes
    header = json.dumps({**snapshot.header, "format": FORMAT, "arrays": specs}).encode()
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    checksum = hashlib.sha256()
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for part in (MAGIC, len(header).to_bytes(4, "little"), header, *(a.data for _, a in arrays)):
                checksum.update(part)
                handle.write(part)
            handle.write(checksum.digest())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path.stat().st_size


def load(path: Path) -> Snapshot:
    """Read and check a snapshot's own integrity (format, checksum, array bounds); :class:`Refused` else."""
    if not path.exists():
        raise Refused("no snapshot yet")
    try:
        check_private(path, "index snapshot", stat.S_IFREG)
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW)) as handle:
            data = handle.read()
    except (OSError, StoreUnavailable) as exc:
        raise Refused(f"unreadable: {exc}") from None
    if len(data) < len(MAGIC) + 4 + _DIGEST or not data.startswith(MAGIC):
        raise Refused("not a quaid index snapshot (or of another format)")
    body = memoryview(data)[:-_DIGEST]
    if hashlib.sha256(body).digest() != data[-_DIGEST:]:
        raise Refused("checksum mismatch (file damaged or truncated)")
    size = int.from_bytes(data[len(MAGIC): len(MAGIC) + 4], "little")
    start = len(MAGIC) + 4 + size
    try:
        header = json.loads(bytes(body[len(MAGIC) + 4: start]))
        if header.get("format") != FORMAT:
            raise Refused(f"format {header.get('format')}, this version reads {FORMAT}")
        arrays = {spec["name"]: _array(body[start:], spec) for spec in header.pop("arrays")}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Refused(f"malformed: {exc}") from None
    return Snapshot(header, arrays)


def _array(region: memoryview, spec: dict) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    if dtype.str not in _DTYPES:
        raise ValueError(f"array type {spec['dtype']}")
    shape = tuple(int(n) for n in spec["shape"])
    offset = int(spec["offset"])
    count = int(np.prod(shape, dtype=np.int64))
    if offset < 0 or min(shape, default=0) < 0 or offset + count * dtype.itemsize > len(region):
        raise ValueError(f"array {spec['name']} outside the file")
    return np.frombuffer(region, dtype=dtype, count=count, offset=offset).reshape(shape)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (the folder's entry), where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)

"""How long ``quaid serve`` takes to start with many stored pictures, with and without the index snapshot.

What is measured: N synthetic pictures are written straight into the embedded Redis of a fresh
``QUAID_HOME`` (records stamped with the running algorithms' versions, the default prefilter codes:
PDQ 32 B, pHash and dHash 8 B, four region codes of 8 B; no other features, which a start never
reads). Then ``quaid serve --port 0 --workers 0`` is started as a process and timed from launch
to its "quaid serving on" line (imports, settings, index, HTTP server), then stopped with SIGTERM:

1. ``QUAID_INDEX_SNAPSHOT=0``: the index rebuilt from Redis (what every start did before);
2. snapshot on, none yet: rebuilt, then the snapshot written (the stop writes nothing more);
3. snapshot on: loaded from the snapshot;
4. the same after ``--changes`` pictures were added and deleted through the change stream by
   another writer: the snapshot plus those changes replayed.

The snapshot file is read through the page cache (it was just written); a cold read adds its size
divided by the disk's read rate. Figures are wall-clock seconds on a shared, loaded machine.

Usage: ``python -m benchmarks.bench_restart --pictures 1000000 [--changes 10000]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis

CODES = {"pdq": 32, "phash": 8, "dhash": 8, "regions0": 8, "regions1": 8, "regions2": 8, "regions3": 8}


def fill(client, count: int, versions: dict, start: int = 0, seed: int = 0) -> None:
    """Write ``count`` synthetic records, 2000 per pipeline, each announced on the change stream."""
    from engine.store import ChangeLog, RecordStore
    from engine.store.records import new_record

    store, changes = RecordStore(client), ChangeLog(client)
    rng = np.random.default_rng(seed)
    for first in range(start, start + count, 2000):
        numbers = range(first, min(start + count, first + 2000))
        blobs = {name: rng.bytes(nbytes * len(numbers)) for name, nbytes in CODES.items()}
        pipe = client.pipeline(transaction=False)
        for n, number in enumerate(numbers):
            codes = {name: blobs[name][n * nbytes: (n + 1) * nbytes] for name, nbytes in CODES.items()}
            record = new_record(f"{number:064x}", name=f"synthetic-{number}.png", cluster=number // 3 + 1,
                                versions=versions)
            if start:  # a later writer: announce it, as the engine's add does
                changes.publish("add", record.id)
            store.put(record, {}, codes, client=pipe)
        pipe.execute()


def serve_start(home: Path, snapshot: bool) -> float:
    """Seconds from launching ``quaid serve`` to its ready line; the process is stopped after."""
    env = {**os.environ, "QUAID_HOME": str(home), "QUAID_INDEX_SNAPSHOT": "1" if snapshot else "0"}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", "0", "--workers", "0"],
                               env=env, stderr=subprocess.PIPE, text=True)
    ready = None
    try:
        for line in process.stderr:
            if "index" in line:
                print("   ", line.rstrip(), file=sys.stderr)
            if "quaid serving on" in line:
                ready = time.perf_counter() - started
                break
    finally:
        process.send_signal(signal.SIGTERM)
        for line in process.stderr:  # what it logs while stopping (a snapshot written or not)
            if "index" in line:
                print("   ", line.rstrip(), file=sys.stderr)
        process.wait(timeout=600)
    if ready is None:
        raise RuntimeError(f"quaid serve exited with {process.returncode} before serving")
    return ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=10_000, help="adds and deletes made before run 4")
    args = parser.parse_args()
    from engine.config import load_settings
    from engine.matching import Matcher
    from engine.store import ChangeLog, RecordStore, connect
    from engine.store.versions import current_versions

    settings = load_settings()
    versions = current_versions(Matcher(settings).algorithms, settings)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        connection = connect(None, home)
        client = connection.client
        try:
            started = time.perf_counter()
            fill(client, args.pictures, versions)
            result = {"pictures": args.pictures, "write_s": round(time.perf_counter() - started, 1),
                      "redis_used_mb": round(int(client.info("memory")["used_memory"]) / 1e6)}
            result["start_rebuild_s"] = round(serve_start(home, snapshot=False), 2)
            result["start_rebuild_and_write_snapshot_s"] = round(serve_start(home, snapshot=True), 2)
            snapshot_file = home / "index" / "snapshot.bin"
            result["snapshot_mb"] = round(snapshot_file.stat().st_size / 1e6, 1)
            result["start_from_snapshot_s"] = round(serve_start(home, snapshot=True), 2)
            fill(client, args.changes // 2, versions, start=args.pictures, seed=1)
            for number in range(0, args.changes // 2):
                RecordStore(client).delete(f"{number:064x}")
                ChangeLog(client).publish("delete", f"{number:064x}")
            result["changes_since_snapshot"] = args.changes
            result["start_from_snapshot_plus_changes_s"] = round(serve_start(home, snapshot=True), 2)
        finally:
            try:  # throwaway data: no final save of a gigabyte-sized dump
                client.shutdown(nosave=True)
            except redis.RedisError:
                pass
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

"""Capacity figures for the README's capacity model: memory, search and add cost per core.

Measured, on real screenshots (documentation pages rendered by Chromium, see
``bench_search.py``; cached in ``--shots``) added to a fresh embedded Redis:

* **Redis memory per picture**: ``used_memory`` growth divided by the pictures added, and
  ``MEMORY USAGE`` of each of a picture's keys (record, features, codes, thumbnail), with
  the size of every feature field — ORB's (keypoints, descriptors and a grey thumbnail
  for the aligned difference) dominates. Also what zlib would save on it (lossless, so
  no accuracy change) and what dropping the stored thumbnail saves.
* **Index RAM per picture** in every ``quaid serve`` process: RSS growth of a
  :class:`engine.store.mirror.Mirror`'s candidate index plus cluster map holding
  ``--index`` synthetic pictures with the real code names and lengths.
* **Prefilter cost per million pictures per core**: ``CandidateIndex.shortlist`` on that
  index, one thread (faiss ``IndexBinaryFlat``), per query and per million stored.
* **Verification cost** (independent of the store size: the shortlist is bounded) and
  **add cost**: CPU time of this process per ``Quaid.search`` / ``Quaid.add``, plus the
  Redis server's own CPU (``INFO cpu``) per add.
* **Change-stream hot key**: Redis CPU per ``XADD`` and per empty ``XREAD`` (``INFO
  commandstats``), the two operations every add and every search put on that one key.
* **Disk tier** (:mod:`engine.store.tier`, LMDB in ``QUAID_HOME`` at the defaults): its disk
  bytes per picture, and whole-search wall time p50, *cold* (a fresh process, the tier's file
  evicted from the page cache with ``posix_fadvise(DONTNEED)`` first, so the verified candidates'
  ORB features come from the disk) and *warm* (the same queries again in that process).

The process is pinned to one core. Screenshots: rendered documentation pages, or the PNG files
of ``--folder`` (real page screenshots). Usage:
``python -m benchmarks.bench_capacity [--pictures 100] [--folder DIR] [--index 1000000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from benchmarks.bench_index import pin_one_core
from benchmarks.bench_search import modified_copy, pages, render


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def server_cpu(client) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def store_figures(shots: list[Path], home: Path) -> tuple[dict, object]:
    """Add the screenshots to a fresh store; memory per picture and per key, add and search CPU."""
    from engine.config import load_settings
    from engine.core import Quaid
    from engine.store import keys

    quaid = Quaid.open(load_settings(home=home, redis_url=None))
    client = quaid.records.redis
    tier = quaid.records.tier
    tier_before = tier.size_bytes() if tier is not None else 0
    before, cpu_before = int(client.info("memory")["used_memory"]), server_cpu(client)
    add_cpu = []
    ids = []
    for path in shots:
        data = path.read_bytes()
        started = time.process_time()
        ids.append(quaid.add(data, name=path.name).id)
        add_cpu.append(time.process_time() - started)
    redis_cpu = (server_cpu(client) - cpu_before) / len(shots)
    grown = int(client.info("memory")["used_memory"]) - before
    tier_grown = (tier.size_bytes() or 0) - tier_before if tier is not None else 0
    per_key = {kind: float(np.mean([client.memory_usage(fn(i), samples=0) or 0 for i in ids]))
               for kind, fn in (("record", keys.picture), ("features", keys.features),
                                ("codes", keys.codes), ("image", keys.image))}
    fields = {}
    for ident in ids:
        for name, value in quaid.records.features_many([ident])[ident].items():
            fields.setdefault(name, []).append(len(value))
    orb = [quaid.records.feature(i, "orb") for i in ids]
    orb = [o for o in orb if o]
    search_cpu = []
    for path in shots[:30]:
        query = modified_copy(path.read_bytes())
        started = time.process_time()
        quaid.search(query)
        search_cpu.append(time.process_time() - started)
    figures = {
        "pictures": len(ids),
        "redis_bytes_per_picture": round(grown / len(ids)),
        "bulk_store": tier.description if tier is not None else "redis",
        "tier_disk_bytes_per_picture": round(tier_grown / len(ids)),
        "key_bytes": {k: round(v) for k, v in per_key.items()},
        "feature_field_bytes": {k: round(float(np.mean(v))) for k, v in sorted(fields.items())},
        "add_cpu_ms_client": round(1000 * float(np.median(add_cpu)), 1),
        "add_cpu_ms_redis": round(1000 * redis_cpu, 2),
        "search_cpu_ms_p50_at_this_size": round(1000 * float(np.median(search_cpu)), 1),
    }
    if orb:
        figures["orb_zlib_ratio"] = round(sum(len(zlib.compress(o, 9)) for o in orb) / sum(map(len, orb)), 3)
        figures["orb_thumbnail_bytes"] = round(float(np.mean([_orb_thumb_bytes(o) for o in orb])))
    figures["stream"] = stream_figures(client, quaid.mirror.changes)
    codes = quaid.records.index_entries([ids[0]])[ids[0]].codes
    return figures, (quaid, codes)


def search_latency(home: Path, shots: list[Path], queries: int = 30) -> dict:
    """Whole-search wall time p50 in a fresh process, cold then warm (see the module docstring)."""
    data_file = home / "bulk" / "data.mdb"
    if data_file.exists():
        descriptor = os.open(data_file, os.O_RDONLY)
        os.fsync(descriptor)
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(descriptor)
    paths = [str(p) for p in shots[:queries]]
    child = subprocess.run([sys.executable, "-m", "benchmarks.bench_capacity", "--search-child", str(home),
                            *paths], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[1])
    return json.loads(child.stdout.splitlines()[-1])


def search_child(home: Path, paths: list[str]) -> None:
    """Run in the fresh process: search modified copies twice, print p50s (ms) as JSON."""
    from engine.config import load_settings
    from engine.core import Quaid

    queries = [modified_copy(Path(p).read_bytes()) for p in paths]
    with Quaid.open(load_settings(home=home, redis_url=None)) as quaid:
        passes = []
        for _ in range(2):
            timings = []
            for query in queries:
                started = time.perf_counter()
                quaid.search(query)
                timings.append(time.perf_counter() - started)
            passes.append(round(1000 * float(np.median(timings)), 1))
    print(json.dumps({"search_ms_p50_cold": passes[0], "search_ms_p50_warm": passes[1],
                      "queries": len(queries)}))


def _orb_thumb_bytes(feature: bytes) -> int:
    """Bytes of the grey JPEG thumbnail inside an ORB feature (the rest: 8 + 32 bytes per keypoint)."""
    from engine.algorithms.orb_feature import HEADER

    return HEADER.unpack_from(feature)[4]


def stream_figures(client, changes, events: int = 2000) -> dict:
    """Server CPU (µs) per XADD and per XREAD on the change stream, from INFO commandstats."""
    client.config_resetstat()
    for n in range(events):
        changes.publish("update", f"{n:064x}")
    position = changes.last_id()
    for _ in range(events):
        changes.read(position)
    stats = client.info("commandstats")
    return {"xadd_usec": round(float(stats["cmdstat_xadd"]["usec_per_call"]), 2),
            "xread_usec": round(float(stats["cmdstat_xread"]["usec_per_call"]), 2)}


def index_figures(codes: dict[str, bytes], count: int, shortlist: int, queries: int = 20) -> dict:
    """RSS per picture of the in-memory index + cluster map, and prefilter time per query."""
    from engine.keytable import release_free_memory
    from engine.store.mirror import new_views

    rng = np.random.default_rng(1)
    ids = [hashlib.sha256(n.to_bytes(8, "little")).hexdigest() for n in range(count)]
    arrays = {name: rng.integers(0, 256, (count, len(code)), dtype=np.uint8) for name, code in codes.items()}
    base = rss_bytes()
    index, clusters = new_views("faiss")  # as the Mirror builds them: one shared id table
    step = 100_000
    for start in range(0, count, step):
        chunk = ids[start: start + step]
        index.extend([(ident, {name: arrays[name][start + n].tobytes() for name in codes})
                      for n, ident in enumerate(chunk)])
        for n, ident in enumerate(chunk):
            clusters.set(ident, start + n, 1.7e9 + start + n)
    index.prepare(wait=True)  # the multi-index hashes, past settings.index_multihash_from codes
    release_free_memory()  # as Mirror.rebuild does after loading
    index.shortlist(_random_query(rng, codes), shortlist)  # builds the faiss tables (older versions)
    grown = rss_bytes() - base  # the source arrays are still alive: their freeing must not count
    del arrays
    timings = []
    for _ in range(queries):
        query = _random_query(rng, codes)
        started = time.perf_counter()
        index.shortlist(query, shortlist)
        timings.append(time.perf_counter() - started)
    per_query = float(np.median(timings))
    return {"indexed": count, "code_bytes_per_picture": sum(len(c) for c in codes.values()),
            "code_names": sorted(codes), "tables": index.kinds(),
            "rss_bytes_per_picture": round(grown / count),
            "prefilter_ms_per_query": round(1000 * per_query, 2),
            "prefilter_ms_per_million": round(1000 * per_query * 1_000_000 / count, 2)}


def _random_query(rng: np.random.Generator, codes: dict[str, bytes]) -> dict[str, list[bytes]]:
    return {name: [rng.integers(0, 256, len(code), dtype=np.uint8).tobytes()] for name, code in codes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=100, help="screenshots added to the store")
    parser.add_argument("--index", type=int, default=1_000_000, help="synthetic pictures in the index")
    parser.add_argument("--shots", default="/tmp/quaid-bench-shots", help="screenshot cache folder")
    parser.add_argument("--folder", default=None, help="take the screenshots from this folder's PNG files")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--search-child", nargs="+", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    pin_one_core()
    if args.search_child:
        search_child(Path(args.search_child[0]), args.search_child[1:])
        return
    if args.folder:
        shots = sorted(Path(args.folder).glob("*.png"))[: args.pictures]
    else:
        shots = render(pages(args.pictures), Path(args.shots))
    with tempfile.TemporaryDirectory(prefix="quaid-capacity-") as home:
        store, (quaid, codes) = store_figures(shots, Path(home))
        shortlist = quaid.settings.shortlist
        quaid.close()
        store.update(search_latency(Path(home), shots))
        from engine.store import EmbeddedRedis

        EmbeddedRedis(Path(home) / "redis").stop()
    figures = {"store": store, "index": index_figures(codes, args.index, shortlist)}
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()

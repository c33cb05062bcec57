"""The candidate index's multi-index hash against its flat scan, at up to tens of millions of codes.

What is measured, per code table of the default prefilter (``pdq`` 256 bits, ``phash`` and
``dhash`` 64 bits, and the four 64-bit ``regions`` tables, whose queries carry many probes), on
one pinned core with faiss on one thread:

* ``build_s`` and ``hash_mb``: building :class:`engine.multihash.MultiIndexHash` over the table,
  and the memory it adds (its arrays; the codes are not copied);
* ``hashed_ms`` / ``flat_ms``: :meth:`engine.index.CodeTable.nearest` through the hash and through
  the flat scan (faiss ``knn_hamming``), query by query alternately so that load from other
  processes weighs on both alike; p50 over the queries;
* ``recall``: how often the true match (the stored code the query was made from) is among the
  ``k`` returned, for queries with a share of their bits flipped: within the guaranteed radius
  (8 bits of 64, 35 of 256) and beyond it.

Synthetic codes: uniformly random bits (seeded). Real hashes bunch (flat pages share substrings),
which fills some buckets: the index then scans flat for those queries (never slower than the scan
by more than the probe cost), so these figures are the best case for the hash.

Usage: ``python -m benchmarks.bench_multihash --size 10000000 [--queries 200]``
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from benchmarks.bench_index import pin_one_core
from engine.index import CodeTable
from engine.multihash import radius

TABLES = {"pdq": 32, "phash": 8, "dhash": 8, "regions0": 8, "regions1": 8, "regions2": 8, "regions3": 8}
REGION_PROBES = 36  # median probes of a query's region codes (README, region codes' cost)
SHARES = (0.08, 0.125, 0.16, 0.2)  # bits flipped in a query: 8 % and 12.5 % are within the radius


def flipped(codes: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(codes, axis=1)
    count = round(bits.shape[1] * share)
    for row in bits:
        row[rng.choice(len(row), count, replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def table_of(codes: np.ndarray) -> CodeTable:
    table = CodeTable(codes.shape[1], "faiss", multihash_from=None)
    table.put_many(np.arange(len(codes), dtype=np.int32), codes)
    return table


def measure(name: str, size: int, queries: int, k: int, rng: np.random.Generator) -> dict:
    nbytes = TABLES[name]
    codes = rng.integers(0, 256, (size, nbytes), dtype=np.uint8)
    table = table_of(codes)
    before = _peak_rss_kb()
    started = time.perf_counter()
    table.multihash_from = 0
    table.prepare(wait=True)
    build = time.perf_counter() - started
    hashed = table._hashes.current
    hash_mb = hashed.nbytes_used / 1e6
    result = {"table": name, "codes": size, "bits": nbytes * 8, "radius_bits": radius(nbytes),
              "build_s": round(build, 2), "hash_mb": round(hash_mb, 1),
              "hash_bytes_per_code": round(hash_mb * 1e6 / size, 1), "codes_mb": round(codes.nbytes / 1e6, 1),
              "peak_rss_growth_mb": round((_peak_rss_kb() - before) / 1024)}
    picks = rng.integers(0, size, queries)
    hashed_times, flat_times = [], []
    recall = {}
    for share in SHARES:
        near = flipped(codes[picks], share, rng)
        found_hashed = found_flat = 0
        for pick, code in zip(picks.tolist(), near, strict=True):
            probes = [code.tobytes()]
            if name.startswith("regions"):  # the true band among the query's other bands
                probes += [rng.bytes(nbytes) for _ in range(REGION_PROBES - 1)]
            started = time.perf_counter()
            slots, _ = table.nearest(probes, k)
            hashed_times.append(time.perf_counter() - started)
            found_hashed += pick in slots.tolist()
            table._hashes.current, table.multihash_from = None, None  # the same table, scanned flat
            started = time.perf_counter()
            slots, _ = table.nearest(probes, k)
            flat_times.append(time.perf_counter() - started)
            found_flat += pick in slots.tolist()
            table._hashes.current, table.multihash_from = hashed, 0
        bits = round(nbytes * 8 * share)
        recall[f"{bits}_bits"] = {"hashed": found_hashed / queries, "flat": found_flat / queries}
    hashed_ms = float(np.percentile(hashed_times, 50)) * 1000
    flat_ms = float(np.percentile(flat_times, 50)) * 1000
    result.update({"hashed_p50_ms": round(hashed_ms, 3), "flat_p50_ms": round(flat_ms, 3),
                   "hashed_p99_ms": round(float(np.percentile(hashed_times, 99)) * 1000, 3),
                   "speedup_p50": round(flat_ms / hashed_ms, 1), "recall_at_k": recall, "k": k})
    return result


def _peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000, help="codes per table")
    parser.add_argument("--queries", type=int, default=200, help="queries per flipped share")
    parser.add_argument("--k", type=int, default=50, help="shortlist size (settings.shortlist)")
    parser.add_argument("--tables", nargs="+", default=["pdq", "phash", "regions0"], choices=list(TABLES),
                        help="tables to measure (dhash is phash's twin, regions1-3 regions0's)")
    args = parser.parse_args()
    pin_one_core()
    rng = np.random.default_rng(args.size)
    for name in args.tables:
        print(json.dumps(measure(name, args.size, args.queries, args.k, rng)), flush=True)


if __name__ == "__main__":
    main()

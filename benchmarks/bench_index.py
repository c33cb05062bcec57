"""Candidate-index latency at 10k, 100k and 1M stored pictures, against faiss brute force.

What is measured, on one core (the process is pinned to CPU 0, faiss/OpenMP to one thread):

* ``shortlist``: :meth:`engine.index.CandidateIndex.shortlist` as search calls it — every
  prefilter code name of the default matcher (``pdq-screen`` 256 bits, ``phash``/``dhash`` 64 bits),
  the query's codes, ``k = settings.shortlist`` per name, union, ranking;
* ``faiss``: the reference the issue sets: one ``faiss.IndexBinaryFlat.search`` per code name
  over exactly the same codes, same k, nothing else (no id mapping, no union);
* ``numpy``: the index's numpy backend (``np.bitwise_count`` over uint64 words), for comparison.

Synthetic codes: uniformly random bits from a seeded generator (``numpy.random.default_rng``);
queries are stored codes with 8 % of their bits flipped (a near-duplicate). Scan cost does
not depend on the distribution of the codes; only the top-k heap work does, slightly.

``--rebuild N`` measures instead the index rebuild a process does at start: N synthetic
records (record hash, the prefilter codes above, and the small features — pHash, dHash,
PDQ, Goldberg 648 B, ForBild 288 B, but not ORB's ~37 KB of keypoints) written through
:class:`engine.store.RecordStore` into a fresh embedded Redis, then
:meth:`engine.store.mirror.Mirror.rebuild` timed, with Redis memory per picture.

Usage: ``python benchmarks/bench_index.py [--sizes 10000 100000 1000000] [--queries 200]``
       ``python benchmarks/bench_index.py --rebuild 100000``
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from engine.index import CandidateIndex

CODE_BYTES = {"pdq-screen": 32, "phash": 8, "dhash": 8}  # the default prefilter codes


def pin_one_core() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import faiss

    faiss.omp_set_num_threads(1)


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def flip(code: np.ndarray, rng: np.random.Generator, share: float = 0.08) -> bytes:
    bits = np.unpackbits(code)
    positions = rng.choice(len(bits), int(len(bits) * share), replace=False)
    bits[positions] ^= 1
    return np.packbits(bits).tobytes()


def run(size: int, queries: int, k: int, backends: list[str]) -> dict:
    import faiss

    rng = np.random.default_rng(size)
    codes = {name: rng.integers(0, 256, (size, nbytes), dtype=np.uint8)
             for name, nbytes in CODE_BYTES.items()}
    ids = [f"{n:064x}" for n in range(size)]
    picks = rng.integers(0, size, queries)
    query_codes = [{name: [flip(codes[name][p], rng)] for name in CODE_BYTES} for p in picks]
    result: dict = {"pictures": size, "k": k, "queries": queries}

    flat = {}
    for name, matrix in codes.items():
        flat[name] = faiss.IndexBinaryFlat(matrix.shape[1] * 8)
        flat[name].add(matrix)

    def faiss_flat(q: dict) -> None:
        for name, index in flat.items():
            index.search(np.frombuffer(q[name][0], np.uint8).reshape(1, -1), k)

    for backend in backends:
        index = CandidateIndex(backend)
        started = time.perf_counter()
        entries = [(ident, {name: codes[name][n].tobytes() for name in CODE_BYTES})
                   for n, ident in enumerate(ids)]
        index.extend(entries)  # as the index rebuild at start does
        build = time.perf_counter() - started
        del entries
        index.shortlist(query_codes[0], k)  # the faiss backend builds its tables lazily
        samples, reference, found = [], [], 0
        # Interleaved with the faiss reference, query by query, so that load from other
        # processes on the machine weighs on both alike.
        for q, pick in zip(query_codes[: queries if backend == "faiss" else max(5, queries // 10)],
                           picks, strict=False):
            started = time.perf_counter()
            faiss_flat(q)
            reference.append(time.perf_counter() - started)
            started = time.perf_counter()
            shortlist = index.shortlist(q, k)
            samples.append(time.perf_counter() - started)
            found += shortlist[0].id == ids[pick]
        result[f"shortlist_{backend}"] = {**percentiles(samples), "build_s": round(build, 2),
                                          "found_first": f"{found}/{len(samples)}"}
        result.setdefault("faiss_flat", percentiles(reference))
    result["shortlist_vs_faiss_p50"] = round(result["shortlist_faiss"]["p50_ms"]
                                             / result["faiss_flat"]["p50_ms"], 2)
    return result


def rebuild(size: int) -> dict:
    """Write ``size`` synthetic pictures to a fresh embedded Redis, then time a full index rebuild."""
    import tempfile

    from engine.store import ChangeLog, EmbeddedRedis, PictureRecord, RecordStore
    from engine.store.mirror import Mirror

    rng = np.random.default_rng(size)
    small = {"goldberg": 648, "forbild": 288}
    with tempfile.TemporaryDirectory() as home:
        server = EmbeddedRedis(home)
        client = server.acquire()
        try:
            store = RecordStore(client)
            before = int(client.info("memory")["used_memory"])
            started = time.perf_counter()
            for start in range(0, size, 1000):
                pipe = client.pipeline(transaction=False)
                for n in range(start, min(size, start + 1000)):
                    codes = {name: rng.bytes(nbytes) for name, nbytes in CODE_BYTES.items()}
                    features = {**codes, "pdq-screen": codes["pdq-screen"] + b"\x64"}
                    features.update({name: rng.bytes(nbytes) for name, nbytes in small.items()})
                    record = PictureRecord(id=f"{n:064x}", name=f"synthetic-{n}.png", tags=("bench",),
                                           added=float(n), size=150_000, width=1280, height=800,
                                           format="PNG", cluster=n)
                    store.put(record, features, codes, client=pipe)
                pipe.execute()
            write = time.perf_counter() - started
            per_picture = (int(client.info("memory")["used_memory"]) - before) / size
            mirror = Mirror(store, ChangeLog(client))
            started = time.perf_counter()
            loaded = mirror.rebuild()
            seconds = time.perf_counter() - started
        finally:
            server.stop()
    return {"pictures": size, "loaded": loaded, "rebuild_s": round(seconds, 2),
            "rebuild_pictures_per_s": int(loaded / seconds), "write_pictures_per_s": int(size / write),
            "redis_bytes_per_picture_without_orb": int(per_picture)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=50, help="shortlist size (settings.shortlist)")
    parser.add_argument("--backends", nargs="+", default=["faiss", "numpy"])
    parser.add_argument("--rebuild", type=int, metavar="N", help="measure an index rebuild of N pictures")
    args = parser.parse_args()
    pin_one_core()
    if args.rebuild:
        print(json.dumps(rebuild(args.rebuild)), flush=True)
        return
    for size in args.sizes:
        print(json.dumps(run(size, args.queries, args.k, args.backends)), flush=True)


if __name__ == "__main__":
    main()

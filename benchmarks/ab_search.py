"""Compare the whole-search CPU time of two settings, query by query, in one process.

Why: on a shared VM the same code measures up to 1.5x slower for minutes at a
time, so two benchmark runs made minutes apart cannot tell a 5 % change from
the host's noise. Here both variants answer every query back to back (in
alternating order), so a slow period slows both alike; the figure to read is
the median of the per-query time ratios B / A. Parsed ORB features are cached
by their bytes (``orb_feature.unpack``), which both stores share; the cache is
cleared before every search so the second variant does not start warm.

Each variant gets its own store (embedded Redis in a temporary QUAID_HOME)
filled with the same screenshots (``bench_search``'s cache: rendered pages of
Debian documentation sites); queries are modified copies of stored pages (JPEG
quality 70, 80 %) and full-size PNG screenshots of unseen pages ("unseen"). Settings are
given as ``name=value`` pairs, as the ``QUAID_*`` variables take them. The
process is pinned to one CPU; OpenCV and faiss use one thread.

Usage: ``python -m benchmarks.ab_search --a verify_budget=4 --b verify_budget=3``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_index import pin_one_core
from benchmarks.bench_search import make_queries, p50_ms, pages, reference_workload, render
from engine.algorithms.orb_feature import unpack


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """``["verify_budget=3", ...]`` -> ``{"verify_budget": "3"}``; a pair without ``=`` -> SystemExit."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"setting {pair!r}: expected name=value")
        out[name.strip()] = value.strip()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", nargs="*", default=[], metavar="NAME=VALUE", help="settings of variant A")
    parser.add_argument("--b", nargs="*", default=[], metavar="NAME=VALUE", help="settings of variant B")
    parser.add_argument("--stored", type=int, default=150)
    parser.add_argument("--copies", type=int, default=40)
    parser.add_argument("--unseen", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="times every query is searched per variant")
    parser.add_argument("--shots", default="/tmp/quaid-bench-shots", help="screenshot cache folder")
    args = parser.parse_args()
    variants = {"A": parse_overrides(args.a), "B": parse_overrides(args.b)}
    shots = render(pages(args.stored + args.unseen), Path(args.shots))
    pin_one_core()
    import cv2

    cv2.setNumThreads(1)
    from engine.config import load_settings
    from engine.core import Quaid

    stored, unseen = shots[: args.stored], shots[args.stored:]
    queries = make_queries(stored, unseen, args.copies)
    with tempfile.TemporaryDirectory() as home_a, tempfile.TemporaryDirectory() as home_b:
        stores = {name: Quaid.open(load_settings(home=home, redis_url=None, **variants[name]))
                  for name, home in (("A", home_a), ("B", home_b))}
        try:
            for quaid in stores.values():
                for path in stored:
                    quaid.add(path.read_bytes(), name=path.name)
                quaid.search(queries[0][1])  # warm-up
            cpu = {(name, kind): [] for name in stores for kind in ("copy", "unseen")}
            ratios: list[float] = []
            reference: list[float] = []
            differing = 0
            for round_number in range(args.rounds):
                for index, (kind, data) in enumerate(queries):
                    order = ("A", "B") if (index + round_number) % 2 == 0 else ("B", "A")
                    seconds, decisions = {}, {}
                    for name in order:
                        unpack.cache_clear()  # both stores hold the same feature bytes: no warm start
                        started = time.process_time()
                        result = stores[name].search(data)
                        seconds[name] = time.process_time() - started
                        decisions[name] = result.decision.value
                        cpu[(name, kind)].append(seconds[name])
                    ratios.append(seconds["B"] / seconds["A"])
                    differing += round_number == 0 and decisions["A"] != decisions["B"]
                    reference.append(reference_workload())
        finally:
            for quaid in stores.values():
                quaid.close()
    report = {
        "A": variants["A"], "B": variants["B"], "queries": len(queries), "rounds": args.rounds,
        "cpu_p50_ms": {f"{name} {kind}": p50_ms(values) for (name, kind), values in cpu.items() if values},
        "median_ratio_b_over_a": round(float(np.median(ratios)), 3),
        "queries_with_other_decisions": int(differing),
        "reference_workload_cpu_p50_ms": p50_ms(reference),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

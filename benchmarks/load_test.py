"""Load test on loopback (issue 8): sustained searches per second and latency with 10 000 pictures.

Starts ``quaid serve`` on 127.0.0.1 with a fresh QUAID_HOME (its embedded Redis), adds
``--pictures`` small distinct pictures through ``POST /api/v1/pictures`` (several client
threads; bounded by ``--fill-seconds``, after which the count reached is reported and
the fill rate extrapolated), then runs a bounded load: ``--clients`` concurrent clients
send ``POST /api/v1/search`` until ``--requests`` searches are done or ``--seconds`` have
passed, whichever comes first. Queries are a mix of exact copies of stored pictures,
re-encoded copies (JPEG, 0.8 scale) and pictures never stored.

    .venv/bin/python benchmarks/load_test.py [--pictures 10000] [--clients 8] \\
        [--requests 3000] [--seconds 180] [--threads 8] [--home DIR]

Prints a table (searches/s, p50/p90/p99/max latency in ms, per query kind and overall),
errors by status, and the server's resident memory. Everything runs on this machine:
client threads compete with the server for the same cores, so the figures are a floor.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from reliability_support import distinct_picture, rss_kib  # noqa: E402
from serverproc import ServerProcess  # noqa: E402

from engine.store import EmbeddedRedis  # noqa: E402

KINDS = ("exact", "modified", "unseen")


def modified(data: bytes) -> bytes:
    """A 0.8-scale JPEG (quality 80) copy: what a picture looks like after being shared."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((int(image.width * 0.8), int(image.height * 0.8)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def fill(url: str, count: int, clients: int, limit_seconds: float) -> tuple[list[int], float, int]:
    """Add pictures seeds 0..count-1 with ``clients`` threads; returns seeds stored, seconds, new ones."""
    next_seed = iter(range(count))
    lock, stored, errors, new = threading.Lock(), [], Counter(), Counter()
    deadline = time.monotonic() + limit_seconds

    def work() -> None:
        session = requests.Session()
        session.headers["X-Quaid-Request"] = "1"  # quaid refuses changes without it
        while time.monotonic() < deadline:
            with lock:
                seed = next(next_seed, None)
            if seed is None:
                return
            response = session.post(f"{url}/api/v1/pictures", timeout=120,
                                    files={"file": (f"{seed}.png", distinct_picture(seed))})
            with lock:
                if response.status_code in (200, 201):
                    stored.append(seed)
                    new[response.status_code == 201] += 1
                else:
                    errors[response.status_code] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    last = 0
    while any(t.is_alive() for t in threads):
        time.sleep(5)
        with lock:
            done = len(stored)
        if done - last >= 1000 or not any(t.is_alive() for t in threads):
            rate = done / (time.monotonic() - started)
            print(f"  {done} added ({rate:.1f}/s)", file=sys.stderr, flush=True)
            last = done
    for thread in threads:
        thread.join()
    if errors:
        print(f"  add errors by status: {dict(errors)}", file=sys.stderr)
    return sorted(stored), time.monotonic() - started, new[True]


def queries(stored: list[int], total: int) -> list[tuple[str, int, bytes]]:
    """(kind, seed, bytes) of every search, made before the clock starts (clients share the cores)."""
    rng = random.Random(7)
    out = []
    for number in range(total):
        kind = KINDS[number % len(KINDS)]
        seed = rng.choice(stored) if kind != "unseen" else 10_000_000 + number
        data = distinct_picture(seed)
        out.append((kind, seed, modified(data) if kind == "modified" else data))
    return out


def load(url: str, planned: list[tuple[str, int, bytes]], clients: int, seconds: float) -> dict:
    """Run the bounded search load; returns latencies (s) per kind, statuses and wall time."""
    latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
    statuses, wrong = Counter(), Counter()
    lock = threading.Lock()
    issued = iter(planned)
    deadline = time.monotonic() + seconds

    def work() -> None:
        session = requests.Session()
        session.headers["X-Quaid-Request"] = "1"  # quaid refuses changes without it
        while time.monotonic() < deadline:
            with lock:
                query = next(issued, None)
            if query is None:
                return
            kind, seed, data = query
            started = time.perf_counter()
            response = session.post(f"{url}/api/v1/search", files={"file": ("q", data)}, timeout=120)
            elapsed = time.perf_counter() - started
            with lock:
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    latencies[kind].append(elapsed)
                    top = (response.json()["matches"] or [{}])[0]
                    if kind == "exact" and top.get("name") != f"{seed}.png":
                        wrong["exact copy not first"] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "statuses": statuses, "wrong": wrong, "wall": time.monotonic() - started}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def table(result: dict) -> list[dict]:
    rows = []
    groups = [(kind, result["latencies"][kind]) for kind in KINDS]
    groups.append(("all", [v for kind in KINDS for v in result["latencies"][kind]]))
    for kind, values in groups:
        if not values:
            continue
        rows.append({"queries": kind, "n": len(values),
                     "per_s": len(values) / result["wall"],
                     "p50_ms": 1000 * statistics.median(values), "p90_ms": 1000 * percentile(values, 0.90),
                     "p99_ms": 1000 * percentile(values, 0.99), "max_ms": 1000 * max(values)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pictures", type=int, default=10_000, help="pictures to store (10000)")
    parser.add_argument("--fill-seconds", type=float, default=900, help="time bound of the fill (900)")
    parser.add_argument("--fill-clients", type=int, default=8, help="client threads adding (8)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent search clients (8)")
    parser.add_argument("--requests", type=int, default=3000, help="searches in all, at most (3000)")
    parser.add_argument("--seconds", type=float, default=180, help="time bound of the load (180)")
    parser.add_argument("--threads", type=int, default=8, help="request threads of quaid serve (8)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--home", metavar="DIR",
                        help="QUAID_HOME to use and keep (a second run re-adds nothing: all duplicates); "
                             "default: a fresh temporary one, removed at the end")
    args = parser.parse_args()

    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="quaid-load-"))
    server = ServerProcess(home, args=("--threads", str(args.threads)), workers=0).start()
    try:
        print(f"quaid serve at {server.url}, QUAID_HOME={home}", file=sys.stderr)
        stored, fill_seconds, added = fill(server.url, args.pictures, args.fill_clients, args.fill_seconds)
        rate = max(added, 1) / fill_seconds
        stats = server.get("/status").json()["stats"]
        rss_filled = rss_kib(server.process.pid)
        print(f"{stats['pictures']} pictures stored, {added} of them added in {fill_seconds:.0f} s "
              f"({rate:.1f} adds/s); {args.pictures} would take {args.pictures / rate / 60:.1f} min",
              file=sys.stderr)
        result = load(server.url, queries(stored, args.requests), args.clients, args.seconds)
        rss_loaded = rss_kib(server.process.pid)
    finally:
        server.stop()
        EmbeddedRedis(home / "redis").stop()
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)

    rows = table(result)
    print(f"\nload: {args.clients} clients, {sum(result['statuses'].values())} searches in "
          f"{result['wall']:.1f} s against {stats['pictures']} stored pictures "
          f"({stats['clusters']} clusters, index {stats['index_backend']}), {args.threads} server threads")
    print(f"{'queries':<9} {'n':>6} {'searches/s':>11} "
          f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for row in rows:
        print(f"{row['queries']:<9} {row['n']:>6} {row['per_s']:>11.1f} {row['p50_ms']:>8.0f} "
              f"{row['p90_ms']:>8.0f} {row['p99_ms']:>8.0f} {row['max_ms']:>8.0f}")
    print(f"statuses: {dict(result['statuses'])}; wrong answers: {dict(result['wrong']) or 'none'}")
    print(f"server RSS: {rss_filled / 1024:.0f} MiB after the fill, "
          f"{rss_loaded / 1024:.0f} MiB after the load")
    if added:
        print(f"fill: {added} pictures added in {fill_seconds:.0f} s = {rate:.1f} adds/s "
              f"({len(stored) - added} were stored already)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "pictures": stats["pictures"], "fill_seconds": fill_seconds, "adds_per_s": rate,
            "clients": args.clients, "wall_seconds": result["wall"], "rows": rows,
            "statuses": dict(result["statuses"]), "wrong": dict(result["wrong"]),
            "rss_mib": [rss_filled / 1024, rss_loaded / 1024]}, indent=1) + "\n")
    return 0 if set(result["statuses"]) <= {200} and not result["wrong"] else 1


if __name__ == "__main__":
    sys.exit(main())

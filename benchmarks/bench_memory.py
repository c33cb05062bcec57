"""Memory of a real ``quaid serve`` when many large pictures arrive at once: peak, and what it keeps.

Starts ``quaid serve`` on loopback with a fresh QUAID_HOME, warms it up with one round
of concurrent searches of a 1280 x 1280 picture (imports, and each request thread's
working buffers, which quaid keeps on purpose: :mod:`engine.memory`), then sends ``--clients`` concurrent
``POST /api/v1/search`` uploads of a ~60 KB PNG declaring 59 megapixels (7680 x 7680,
one flat colour: just under the default pixel limit), ``--rounds`` times. Reads the
service process's ``VmRSS`` before, its peak (``VmHWM``) and ``VmRSS`` a second after
the last answer, from ``/proc/<pid>/status``.

    .venv/bin/python benchmarks/bench_memory.py [--mode P] [--clients 8] [--rounds 2]
        [--budget-megapixels 60] [--arenas 2] [--side 7680]

``--mode``: ``P`` (palette; decoded 1 byte a pixel, widened to RGB at full size: the
costly case), ``L`` (grey) or ``RGB`` (the libspng fast path). Prints the figures in MB
and the answers' status codes (200, or 503 when a request waited past ``decode_wait``).
``--arenas`` sets glibc's ``MALLOC_ARENA_MAX`` for the service: each request thread's
arena otherwise keeps its own share of freed memory.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from drawing import drawn  # noqa: E402
from serverproc import ServerProcess  # noqa: E402

SIDE = 7680  # 59 Mpx


def flat_png(mode: str, side: int) -> bytes:
    colour = {"P": 3, "L": 200, "RGB": (200, 180, 160)}[mode]
    out = io.BytesIO()
    Image.new(mode, (side, side), colour).save(out, "PNG", optimize=True)
    return out.getvalue()


def search_all(url: str, data: bytes, clients: int) -> list[int]:
    """``clients`` searches of ``data`` at once; their status codes."""
    def one(n: int) -> int:
        answer = requests.post(url + "/api/v1/search", files={"file": (f"p{n}.png", data)}, timeout=600)
        return answer.status_code

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(clients)))


def status_mb(pid: int, field: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(text.split(field + ":")[1].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("P", "L", "RGB"), default="P")
    parser.add_argument("--side", type=int, default=SIDE, help="side of the large square picture (7680)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--budget-megapixels", type=int, default=None,
                        help="QUAID_DECODE_BUDGET_MEGAPIXELS for the service (default: quaid's)")
    parser.add_argument("--arenas", type=int, default=None,
                        help="MALLOC_ARENA_MAX for the service (default: glibc's, 8 per core)")
    args = parser.parse_args()
    data = flat_png(args.mode, args.side)
    env = {"QUAID_DECODE_WAIT": "120"}  # measure memory, not refusals
    if args.budget_megapixels:
        env["QUAID_DECODE_BUDGET_MEGAPIXELS"] = str(args.budget_megapixels)
    if args.arenas:
        env["MALLOC_ARENA_MAX"] = str(args.arenas)
    with tempfile.TemporaryDirectory(prefix="quaid-bench-memory-") as home:
        with ServerProcess(Path(home), env=env, args=("--threads", str(args.clients)), workers=0) as server:
            pid = server.process.pid
            server.post("/api/v1/search", files={"file": ("warm.png", drawn(1))}).raise_for_status()
            search_all(server.url, flat_png(args.mode, 1280), args.clients)
            before = status_mb(pid, "VmRSS")
            codes: Counter = Counter()
            started = time.monotonic()
            for _ in range(args.rounds):
                codes.update(search_all(server.url, data, args.clients))
            elapsed = time.monotonic() - started
            time.sleep(1.0)
            peak, after = status_mb(pid, "VmHWM"), status_mb(pid, "VmRSS")
    print(f"{args.clients} clients x {args.rounds} rounds, {len(data) / 1024:.0f} KB {args.mode} PNG of "
          f"{args.side ** 2 / 1e6:.0f} Mpx, budget {args.budget_megapixels or 'default'} Mpx, "
          f"{args.arenas or 'default'} malloc arenas: "
          f"RSS before {before:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB; "
          f"answers {dict(codes)} in {elapsed:.1f} s")


if __name__ == "__main__":
    main()

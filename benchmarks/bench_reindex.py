"""``quaid reindex`` throughput: how long an upgrade that changes features keeps a store refused.

A fresh store (embedded Redis in a temporary QUAID_HOME) gets ``--pictures`` generated
page-like pictures (``--size``, PNG, coloured blocks and text bars) with ``keep=original``;
their records then lose their feature versions, as a store written before features had
versions has none. ``quaid reindex`` runs as the real command in a subprocess (its start,
the index rebuild and the refusal check included) and must leave no picture stale.

Figures: pictures, wall-clock and CPU seconds of the whole command (CPU: what a busy shared
host does not inflate), milliseconds per picture of each.

Usage: ``python -m benchmarks.bench_reindex [--pictures 200] [--size 1280x800]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageDraw

from engine.config import load_settings
from engine.core import Quaid
from engine.store import keys

ROOT = Path(__file__).resolve().parents[1]


def page(seed: int, size: tuple[int, int]) -> bytes:
    """A page-like picture drawn from ``seed`` (distinct layouts per seed)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (250, 250, 250))
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(rng.randrange(6, 12)):
        x, y = rng.randrange(width - 60), rng.randrange(height - 60)
        box = (x, y, x + rng.randrange(40, width // 2), y + rng.randrange(20, height // 3))
        draw.rectangle(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    for row in range(rng.randrange(10, 30)):
        y = 30 + row * rng.randrange(18, 26)
        draw.rectangle((40, y, 40 + rng.randrange(100, width - 80), y + 8), fill=(60, 60, 60))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=200)
    parser.add_argument("--size", default="1280x800")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="quaid-bench-reindex-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUAID_")}
        env.update(QUAID_HOME=home, QUAID_KEEP="original", PYTHONPATH=str(ROOT))
        settings = replace(load_settings(), home=Path(home), redis_url=None, keep="original")
        with Quaid.open(settings) as quaid:
            ids = [quaid.add(page(n, size)).id for n in range(args.pictures)]
            for picture_id in ids:  # as the code before feature versions wrote them
                quaid.redis.hdel(keys.picture(picture_id), "versions")
        started, cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run([sys.executable, "-m", "engine", "reindex"], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
        if done.returncode != 0:
            raise SystemExit(f"reindex failed ({done.returncode}): {done.stderr.strip()}")
        with Quaid.open(settings):  # refused if anything were left stale
            pass
        subprocess.run([sys.executable, "-c", "from engine.store import EmbeddedRedis; import sys; "
                        "EmbeddedRedis(sys.argv[1]).stop()", str(Path(home) / "redis")], cwd=ROOT, env=env)
    print(json.dumps({"pictures": args.pictures, "size": args.size, "seconds": round(seconds, 2),
                      "ms_per_picture": round(1000 * seconds / max(1, args.pictures), 1),
                      "cpu_seconds": round(cpu, 2),
                      "cpu_ms_per_picture": round(1000 * cpu / max(1, args.pictures), 1),
                      "reindex": json.loads(done.stdout.strip().splitlines()[-1])}))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()

"""Search latency through the HTTP service, as MISP and AIL see it (upload, decode, match, JSON).

Renders real documentation pages (python3.11-doc) at 1280x800 with headless Chromium,
starts ``quaid serve`` on loopback with a fresh QUAID_HOME, adds the pages through
``POST /api/v1/pictures``, then times ``POST /api/v1/search`` with JPEG re-encoded
copies (quality 70) of the stored pages and with unseen pages of the same site.

    .venv/bin/python benchmarks/bench_api.py [--pages 40] [--rounds 3]

Prints p50 / p90 / p99 / max in milliseconds, per kind of query.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from serverproc import ServerProcess  # noqa: E402

DOCS = Path("/usr/share/doc/python3.11/html/library")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def render(paths: list[Path]) -> list[bytes]:
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        for path in paths:
            page.goto(path.as_uri())
            shots.append(page.screenshot())
        browser.close()
    return shots


def jpeg(data: bytes, quality: int = 70) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def timed(server: ServerProcess, data: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    response = server.post("/api/v1/search", files={"file": ("q.jpg", data)})
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.json()["decision"]


def summary(name: str, times: list[float], decisions: list[str]) -> str:
    ordered = sorted(times)
    pct = lambda p: ordered[min(len(ordered) - 1, int(p * len(ordered)))]  # noqa: E731
    counts = {d: decisions.count(d) for d in sorted(set(decisions))}
    return (f"{name:<16} n={len(times):<4} p50={statistics.median(times):7.1f} ms  p90={pct(0.9):7.1f}  "
            f"p99={pct(0.99):7.1f}  max={ordered[-1]:7.1f}  decisions={counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pages = sorted(DOCS.glob("*.html"))[: 2 * args.pages : 2]
    unseen = sorted(DOCS.glob("*.html"))[1 : 2 * args.pages : 2][:10]
    shots, others = render(pages), render(unseen)
    with ServerProcess(Path(tempfile.mkdtemp(prefix="quaid-bench-"))) as server:
        started = time.perf_counter()
        for path, shot in zip(pages, shots, strict=True):
            server.post("/api/v1/pictures", files={"file": (path.name, shot)}).raise_for_status()
        added = time.perf_counter() - started
        print(f"added {len(shots)} screenshots in {added:.1f} s ({len(shots) / added:.1f} /s)")
        timed(server, jpeg(shots[0]))  # warm-up
        copies = [timed(server, jpeg(s)) for _ in range(args.rounds) for s in shots]
        unseen_answers = [timed(server, jpeg(s)) for _ in range(args.rounds) for s in others]
    print(summary("modified copies", [t for t, _ in copies], [d for _, d in copies]))
    print(summary("unseen pages", [t for t, _ in unseen_answers], [d for _, d in unseen_answers]))


if __name__ == "__main__":
    main()

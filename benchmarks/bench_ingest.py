"""Bulk-ingest throughput on real screenshots: ``quaid add FOLDER`` and batch add jobs through the API.

Both paths run :mod:`engine.ingest` against a fresh embedded store (a temporary ``QUAID_HOME``):

* **CLI**: the real ``quaid add`` command on a folder of links to the screenshots, then again
  (everything is stored: the re-run skips by SHA-256);
* **API**: a real ``quaid serve`` (``--workers 2`` job threads sharing one preparing pool), the
  same screenshots submitted as add jobs of ``--job-files`` files each, timed from the first
  submission to the last job done.

Screenshots: the first ``--count`` PNG files of ``--folders`` (by default the page screenshots of
the evaluation sets: documentation sites, web apps, login pages). The machine's load average is
printed before and after each run: the figure means little when other work shares the cores.

Usage: ``python -m benchmarks.bench_ingest [--count 5000] [--workers 2] [--skip-api] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["/work/data/eval-large/distractors", "/work/data/eval-large/references",
           "/work/data/eval-large/negatives", "/work/data/eval-full2/references"]


def screenshots(folders: list[str], count: int) -> list[Path]:
    found = [p for folder in folders for p in sorted(Path(folder).glob("*.png"))]
    if len(found) < count:
        raise SystemExit(f"only {len(found)} screenshots in {folders}")
    return found[:count]


def load() -> float:
    return os.getloadavg()[0]


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAID_")}
    env.update(QUAID_HOME=str(home), PYTHONPATH=str(ROOT))
    return env


def cli_figures(shots: list[Path], workers: int, work: Path) -> dict:
    """``quaid add`` on a folder of the screenshots, twice."""
    folder = work / "in"
    folder.mkdir()
    for n, path in enumerate(shots):
        (folder / f"{n:05d}-{path.name}").symlink_to(path)
    home = work / "cli-home"
    runs = []
    for _ in range(2):
        before, started = load(), time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "engine", "add", str(folder), "--workers", str(workers),
                               "--json"], env=environment(home), cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        statuses = [json.loads(line)["status"] for line in done.stdout.splitlines() if line.strip()]
        runs.append({"seconds": round(seconds, 1), "pictures_per_second": round(len(shots) / seconds, 1),
                     "added": statuses.count("added"), "duplicate": statuses.count("duplicate"),
                     "errors": statuses.count("error"), "exit_code": done.returncode,
                     "load_before": round(before, 2), "load_after": round(load(), 2)})
    _stop_store(home)
    return {"first_run": runs[0], "rerun_all_stored": runs[1]}


def api_figures(shots: list[Path], workers: int, job_files: int, work: Path) -> dict:
    """Add jobs through a running ``quaid serve``."""
    home = work / "api-home"
    server = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", "0", "--workers", "2",
                               "--prepare-workers", str(workers)], env=environment(home), cwd=ROOT,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = _served_url(server)
        before, started = load(), time.perf_counter()
        jobs = []
        for start in range(0, len(shots), job_files):
            files = [("file", (p.name, p.read_bytes(), "image/png")) for p in shots[start: start + job_files]]
            answer = requests.post(f"{url}/api/v1/jobs", files=files, data={"action": "add"}, timeout=600)
            answer.raise_for_status()
            jobs.append(answer.json()["job"])
        statuses = []
        for job in jobs:
            while (state := requests.get(f"{url}/api/v1/jobs/{job}", timeout=60).json())["status"] \
                    not in ("done", "failed"):
                time.sleep(0.5)
            statuses += [r["status"] for r in state["results"]]
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(60)
        _stop_store(home)
    return {"seconds": round(seconds, 1), "pictures_per_second": round(len(shots) / seconds, 1),
            "added": statuses.count("added"), "errors": statuses.count("error"), "jobs": len(jobs),
            "load_before": round(before, 2), "load_after": round(load(), 2)}


def _stop_store(home: Path) -> None:
    from engine.store import EmbeddedRedis

    EmbeddedRedis(home / "redis").stop()


def _served_url(server: subprocess.Popen) -> str:
    for line in server.stderr:
        found = re.search(r"serving on (http://\S+)", line)
        if found:
            return found.group(1)
    raise SystemExit("quaid serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="screenshots to add")
    parser.add_argument("--workers", type=int, default=2, help="preparing processes")
    parser.add_argument("--folders", nargs="+", default=FOLDERS)
    parser.add_argument("--job-files", type=int, default=100, help="files per API job")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    shots = screenshots(args.folders, args.count)
    figures: dict = {"screenshots": len(shots), "workers": args.workers, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="quaid-ingest-") as work:
        if not args.skip_cli:
            figures["cli"] = cli_figures(shots, args.workers, Path(work))
            print(json.dumps(figures["cli"]), flush=True)
        if not args.skip_api:
            figures["api"] = api_figures(shots, args.workers, args.job_files, Path(work))
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()

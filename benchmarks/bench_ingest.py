"""Bulk-ingest throughput on real screenshots: ``quaid add FOLDER`` and batch add jobs through the API.

Both paths run :mod:`engine.ingest` against a fresh embedded store (a temporary ``QUAID_HOME``):

* **CLI**: the real ``quaid add`` command on a folder of links to the screenshots, then again
  (everything is stored: the re-run skips by SHA-256);
* **API**: a real ``quaid serve`` (``--workers 2`` job threads sharing one preparing pool), the
  same screenshots submitted as add jobs of ``--job-files`` files each, timed from the first
  submission to the last job done.

* **CPU per picture**: the same ingest in this process, with the CPU time of this process, of
  the preparing workers (``/proc/<pid>/stat``) and of the Redis server (``INFO cpu``) per
  picture, and the rate two cores would reach with nothing else running (2 / CPU per picture):
  a figure other tenants of the machine do not change.

Screenshots: the first ``--count`` PNG files of ``--folders`` (real page screenshots, e.g. those
of an evaluation set built by ``quaid dataset``: documentation sites, web apps, login pages).
The machine's load average is printed before and after each run: the wall-clock rates mean
little when other work shares the cores.

Usage: ``python -m benchmarks.bench_ingest --folders DIR... [--count 5000] [--workers 2]
[--skip-cpu] [--skip-cli] [--skip-api] [--json out.json]``
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
            answer = requests.post(f"{url}/api/v1/jobs", files=files, data={"action": "add"}, timeout=600,
                                   headers={"X-Quaid-Request": "1"})
            answer.raise_for_status()
            jobs.append(answer.json()["job"])
        statuses = []
        for job in jobs:
            while (state := requests.get(f"{url}/api/v1/jobs/{job}", timeout=60).json())["status"] \
                    not in ("done", "failed"):
                time.sleep(0.5)
            statuses += [r["status"] for r in state["results"]]
        seconds = time.perf_counter() - started
        service_cpu = sum(_process_cpu(pid) for pid in _descendants(server.pid))
        redis_cpu = _redis_cpu(_store_client(home))
    finally:
        server.terminate()
        server.wait(60)
        _stop_store(home)
    total = service_cpu + redis_cpu
    return {"seconds": round(seconds, 1), "pictures_per_second": round(len(shots) / seconds, 1),
            "added": statuses.count("added"), "errors": statuses.count("error"), "jobs": len(jobs),
            "cpu_ms_per_picture": {"service_and_workers": round(1000 * service_cpu / len(shots), 1),
                                   "redis": round(1000 * redis_cpu / len(shots), 1)},
            "pictures_per_second_on_2_idle_cores": round(2 * len(shots) / total, 1),
            "load_before": round(before, 2), "load_after": round(load(), 2)}


def _descendants(root: int) -> list[int]:
    """``root`` and every live process below it (the service, its fork server and workers)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def _store_client(home: Path):
    from engine.store import EmbeddedRedis

    return EmbeddedRedis(home / "redis").client()


def cpu_figures(shots: list[Path], workers: int, work: Path) -> dict:
    """Ingest in this process; CPU seconds of every process involved, per picture."""
    from engine.config import load_settings
    from engine.core import Quaid
    from engine.ingest import Item, Preparer, ingest

    home = work / "cpu-home"
    with Quaid.open(load_settings(home=home, redis_url=None)) as quaid:
        redis_before = _redis_cpu(quaid.redis)
        items = (Item(p.name, p.read_bytes()) for p in shots)
        before, started, own = load(), time.perf_counter(), time.process_time()
        with Preparer(quaid.settings, workers) as preparer:
            outcomes = list(ingest(quaid, items, preparer=preparer))
            worker_cpu = sum(_process_cpu(pid) for pid in preparer.worker_pids())
        seconds = time.perf_counter() - started
        own = time.process_time() - own
        redis_cpu = _redis_cpu(quaid.redis) - redis_before
    _stop_store(home)
    count = len(shots)
    total = own + worker_cpu + redis_cpu
    return {"seconds": round(seconds, 1), "pictures_per_second": round(count / seconds, 1),
            "added": sum(1 for o in outcomes if o.result and o.result.status == "added"),
            "cpu_ms_per_picture": {"main": round(1000 * own / count, 1),
                                   "workers": round(1000 * worker_cpu / count, 1),
                                   "redis": round(1000 * redis_cpu / count, 1),
                                   "total": round(1000 * total / count, 1)},
            "pictures_per_second_on_2_idle_cores": round(2 * count / total, 1),
            "main_process_bound_per_second": round(count / own, 1),
            "load_before": round(before, 2), "load_after": round(load(), 2)}


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _redis_cpu(client) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


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
    parser.add_argument("--folders", nargs="+", required=True, help="folders of PNG screenshots")
    parser.add_argument("--job-files", type=int, default=100, help="files per API job")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    shots = screenshots(args.folders, args.count)
    figures: dict = {"screenshots": len(shots), "workers": args.workers, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="quaid-ingest-") as work:
        if not args.skip_cpu:
            figures["cpu"] = cpu_figures(shots, args.workers, Path(work))
            print(json.dumps(figures["cpu"]), flush=True)
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

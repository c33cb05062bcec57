"""``quaid ail-import`` on a generated folder in AIL's crawled-screenshot layout, run as the
real command (a subprocess), against the local store and against a real ``quaid serve``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from ail_standin import ROOT, gif, page, png, reencoded, sha, start_service

from ail_connector.ail_objects import PLACEHOLDER_SCREENSHOTS, rel_path


@pytest.fixture
def own_dir():
    """A folder of our own (not pytest's tmp_path, which other pytest runs may prune)."""
    path = Path(tempfile.mkdtemp(prefix="quaid-ail-import-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def put(folder: Path, data: bytes, obj_id: str | None = None) -> str:
    """Write ``data`` where AIL's crawler would (``Screenshots.create_screenshot``)."""
    obj_id = obj_id or sha(data)
    path = folder / rel_path(obj_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return obj_id


@pytest.fixture
def crawled(own_dir):
    folder = own_dir / "CRAWLED_SCREENSHOT" / "screenshot"
    ids = {
        "original": put(folder, png(page(11))),
        "copy": put(folder, reencoded(page(11))),
        "other": put(folder, png(page(12))),
        "third": put(folder, png(page(13))),
        "gif": put(folder, gif(page(14))),
        "placeholder": put(folder, png(page(15)), next(iter(PLACEHOLDER_SCREENSHOTS))),
    }
    (folder / "README.txt").write_text("not a screenshot")
    return folder, ids


def quaid(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "QUAID_HOME": str(home)}
    env.pop("QUAID_REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def rows_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_ail_import_reports_look_alikes_with_ail_ids_and_is_idempotent(crawled, own_dir):
    folder, ids = crawled
    home, report = own_dir / "home", own_dir / "pairs.csv"
    first = quaid(["ail-import", str(folder), "--report", str(report), "--json"], home)
    assert first.returncode == 0, first.stderr
    rows = rows_of(first.stdout)
    assert rows and all(set(r) == {"screenshot", "match", "decision", "distance"} for r in rows)
    pair = {frozenset((r["screenshot"], r["match"])): r for r in rows}
    found = pair[frozenset((ids["original"], ids["copy"]))]
    assert found["decision"] == "accepted" and found["distance"] < 0.05
    assert len(pair) == len(rows)  # each pair of look-alikes once
    skipped = {ids["gif"], ids["placeholder"]}
    assert not any(skipped & {r["screenshot"], r["match"]} for r in rows)
    assert all(r["decision"] in ("accepted", "to-review") for r in rows)
    assert "4 added" in first.stderr and "2 skipped" in first.stderr

    with report.open(newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert [(r["screenshot"], r["match"], r["decision"]) for r in csv_rows] == \
        [(r["screenshot"], r["match"], r["decision"]) for r in rows]

    second = quaid(["ail-import", str(folder), "--report", str(report), "--json"], home)
    assert second.returncode == 0, second.stderr
    assert rows_of(second.stdout) == rows  # same store content, same report
    assert "0 added, 4 already indexed" in second.stderr

    shown = quaid(["show", "--json", ids["copy"]], home)
    assert json.loads(shown.stdout)["name"] == f"screenshot::{ids['copy']}"


def test_ail_import_through_a_running_service(crawled, own_dir):
    folder, ids = crawled
    service = start_service(own_dir / "service-home")
    try:
        run = quaid(["ail-import", str(folder), "--json", "--server", service.url], own_dir / "unused")
        assert run.returncode == 0, run.stderr
        pairs = {frozenset((r["screenshot"], r["match"])): r["decision"] for r in rows_of(run.stdout)}
        assert pairs[frozenset((ids["original"], ids["copy"]))] == "accepted"
        record = requests.get(f"{service.url}/api/v1/pictures/{ids['other']}", timeout=10).json()
        assert record["name"] == f"screenshot::{ids['other']}"
        assert requests.get(f"{service.url}/api/v1/pictures/{ids['gif']}", timeout=10).status_code == 404
    finally:
        service.stop()
    assert not (own_dir / "unused").exists()  # --server never opens a local store


def test_ail_import_refuses_a_missing_folder(own_dir):
    run = quaid(["ail-import", str(own_dir / "nope")], own_dir / "home")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"quaid ail-import: {own_dir / 'nope'}: not a folder"]


def test_ail_import_skips_special_files_and_fails_an_oversized_one_alone(crawled, own_dir):
    folder, ids = crawled
    fifo = folder / rel_path("f" * 64)
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)  # never a picture: opening it would block the whole import
    limit = max(path.stat().st_size for path in folder.rglob("*") if path.is_file()) + 1
    big_id = put(folder, png(page(16)).ljust(limit + 1, b"\0"))
    run = subprocess.run([sys.executable, "-m", "engine", "ail-import", str(folder), "--json"], cwd=ROOT,
                         env={**os.environ, "QUAID_HOME": str(own_dir / "home"),
                              "QUAID_MAX_UPLOAD_BYTES": str(limit)},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr  # one failure, the rest done
    failed = [line for line in run.stderr.splitlines() if "larger than the upload limit" in line]
    assert len(failed) == 1 and rel_path(big_id) in failed[0]
    assert "f" * 64 not in run.stderr + run.stdout  # the FIFO was never taken for a screenshot
    pairs = {frozenset((row["screenshot"], row["match"])) for row in rows_of(run.stdout)}
    assert frozenset((ids["original"], ids["copy"])) in pairs

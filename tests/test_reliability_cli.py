"""Hostile files through the ``quaid`` command line, as real processes on a QUAID_HOME.

test_cli.py checks one broken file in a folder. Here the whole bad-input corpus plus a
5 GB (sparse) file go through ``quaid add`` and ``quaid search`` next to good pictures:
only the bad files fail, each with one line on stderr; the good ones are stored and found;
a search changes nothing stored; and the huge file is refused without being read (the
process's peak memory stays far below its size).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from badinput import bad_inputs
from drawing import drawn
from reliability_support import store_snapshot

from engine.store import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
GOOD = 12  # good pictures next to the corpus
HUGE = 5 * 1024**3  # bytes of the sparse file (no disk used)
# Runs the CLI and reports the peak resident memory of the process on its last stderr line: VmHWM, the
# high-water mark of this program's own memory. Not getrusage's ru_maxrss: Linux carries it over from
# the forked test process across exec, so it reports the test runner's size once that is larger.
WITH_PEAK = ("import re, sys; from engine.cli import main; code = main(sys.argv[1:]); "
             "status = open('/proc/self/status').read(); "
             "print('peak-kib', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr); "
             "sys.exit(code)")


def quaid(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAID_")}
    env.update(QUAID_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", WITH_PEAK, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("peak-kib")]


def peak_kib(stderr: str) -> int:
    return int(stderr.strip().splitlines()[-1].split()[1])


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("reliability-cli")
    server = EmbeddedRedis(home / "redis")
    server.acquire()  # the test watches the store the CLI processes write to
    yield home
    server.stop()


@pytest.fixture(scope="module")
def store(home):
    client = EmbeddedRedis(home / "redis").client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Good pictures, the corpus and a 5 GB file in one folder; name -> "ok" | "error"."""
    folder = tmp_path_factory.mktemp("inputs")
    expected = {}
    for n in range(GOOD):
        (folder / f"good-{n:02}.png").write_bytes(drawn(900 + n, size=(320, 240)))
        expected[f"good-{n:02}.png"] = "ok"
    for name, data, outcome in bad_inputs():
        (folder / f"{name}.png").write_bytes(data)
        expected[f"{name}.png"] = outcome
    with open(folder / "huge.png", "wb") as handle:
        handle.truncate(HUGE)
    expected["huge.png"] = "error"
    return folder, expected


def test_a_batch_stores_the_good_files_and_fails_only_the_bad_ones(home, store, folder):
    path, expected = folder
    added = quaid(home, "add", str(path), "--json")
    assert added.returncode == 1, added.stderr
    records = {Path(r["name"]).name: r for r in json_lines(added.stdout)}
    assert set(records) == set(expected)
    failed = {name for name, r in records.items() if r["status"] == "error"}
    assert failed == {name for name, outcome in expected.items() if outcome == "error"}
    assert all(r["error"] and "\n" not in r["error"] for name, r in records.items() if name in failed)
    assert "upload limit" in records["huge.png"]["error"]
    lines = errors(added.stderr)
    assert len(lines) == len(failed)  # one line per bad file, no traceback
    assert all(line.startswith("quaid add: ") for line in lines)
    assert {Path(line.split(": ")[1]).name for line in lines} == failed
    assert peak_kib(added.stderr) < 1024 * 1024  # KiB: the 5 GB file was never loaded
    stored = {r["id"] for r in records.values() if r["status"] == "added"}
    assert len(stored) == len(expected) - len(failed)
    assert {key.decode().split("{")[1].rstrip("}") for key in store.scan_iter("quaid:picture:*")} == stored


def test_a_search_batch_answers_every_good_file_and_changes_nothing(home, store, folder):
    path, expected = folder
    before = store_snapshot(store)
    assert before, "run after the add test: the store must hold the good pictures"
    found = quaid(home, "search", str(path), "--json")
    assert found.returncode == 1
    answers = {Path(a["query"]).name: a for a in json_lines(found.stdout)}
    assert set(answers) == set(expected)
    for name, outcome in expected.items():
        answer = answers[name]
        if outcome == "error":
            assert answer["status"] == "error" and answer["error"], name
        elif "noise" in answer:  # a picture that shows next to nothing (one flat 16x16 frame): the add
            assert answer["noise"]["reason"] == "matches-noise", (name, answer)  # stored it as noise
        else:
            assert answer["decision"] == "accepted", (name, answer)
            assert answer["matches"][0]["distance"] == 0 and Path(answer["matches"][0]["name"]).name == name
    assert len(errors(found.stderr)) == sum(1 for o in expected.values() if o == "error")
    assert store_snapshot(store) == before


@pytest.mark.parametrize("command", ["add", "search"])
def test_one_bad_file_is_one_line_and_a_failing_exit_code(home, store, folder, command):
    path, _ = folder
    before = store_snapshot(store)
    done = quaid(home, command, str(path / "huge.png"), str(path / "decompression-bomb.png"))
    assert done.returncode != 0 and done.stdout.strip() == ""
    lines = errors(done.stderr)
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith(f"quaid {command}: ") and "upload limit" in lines[0]
    assert "decompression-bomb.png: " in lines[1] and "pixels" in lines[1].lower()
    assert peak_kib(done.stderr) < 1024 * 1024
    assert store_snapshot(store) == before

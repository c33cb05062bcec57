"""The ``quaid`` command line, run as a real program (``python -m engine``) against a QUAID_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import build_parser, main
from engine.store import EmbeddedRedis
from tests.drawing import drawn, variant

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    yield home
    EmbeddedRedis(home / "redis").stop()  # in case a failed test left it running


def quaid(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAID_")}
    env.update(QUAID_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120, input=stdin)


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_every_command_has_help(capsys):
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"add", "search", "show", "delete", "stats", "export"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: quaid {name}" in capsys.readouterr().out
    assert main([]) == 2


def test_add_search_show_delete_from_the_command_line(home, tmp_path):
    folder = tmp_path / "pictures"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.png").write_bytes(drawn(30))
    (folder / "nested" / "b.png").write_bytes(drawn(31))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / ".hidden.png").write_bytes(drawn(32))
    query = tmp_path / "query.jpg"
    query.write_bytes(variant(drawn(30)))

    added = quaid(home, "add", str(folder), "--tag", "phish", "--meta", "case=42", "--json")
    assert added.returncode == 1, added.stderr  # one bad file fails alone
    records = {Path(r["name"]).name: r for r in lines(added.stdout)}
    assert set(records) == {"a.png", "b.png", "broken.png"}
    assert records["a.png"]["status"] == "added" and "error" not in records["a.png"]
    assert records["broken.png"]["status"] == "error" and records["broken.png"]["error"]
    assert [line for line in added.stderr.splitlines() if "broken.png" in line] != []

    again = quaid(home, "add", str(folder / "a.png"), "--json")
    assert again.returncode == 0
    assert lines(again.stdout)[0]["status"] == "duplicate"

    found = quaid(home, "search", str(query), str(folder / "nested" / "b.png"), "--json")
    assert found.returncode == 0, found.stderr
    first, second = lines(found.stdout)
    assert first["query"] == str(query) and first["decision"] == "accepted"
    assert [m["id"] for m in first["matches"]] == [records["a.png"]["id"]]
    assert first["matches"][0]["tags"] == ["phish"]
    assert second["matches"][0]["distance"] == 0

    table = quaid(home, "search", str(query))
    assert "accepted" in table.stdout and records["a.png"]["id"][:16] in table.stdout

    ident = records["a.png"]["id"]
    shown = quaid(home, "show", ident[:10], "--json")
    assert json.loads(shown.stdout)["metadata"] == {"case": "42"}

    stats = json.loads(quaid(home, "stats", "--json").stdout)
    assert stats["pictures"] == 2 and stats["clusters"] == 2

    graph_file = tmp_path / "graph.json"
    assert quaid(home, "export", "--format", "graph", "-o", str(graph_file)).returncode == 0
    graph = json.loads(graph_file.read_text())
    assert {n["id"] for n in graph["nodes"]} == {ident, records["b.png"]["id"]}

    deleted = quaid(home, "delete", ident, "0000deadbeef")
    assert deleted.returncode == 1 and f"deleted {ident}" in deleted.stdout
    assert "0000deadbeef" in deleted.stderr
    after = lines(quaid(home, "search", str(query), "--json").stdout)[0]
    assert after == {"query": str(query), "decision": "rejected", "matches": []}
    assert not EmbeddedRedis(home / "redis").socket_path.exists()  # the last command stopped Redis


def test_a_running_process_sees_what_another_process_adds(home, tmp_path):
    picture = tmp_path / "p.png"
    picture.write_bytes(drawn(33))
    listener = subprocess.Popen(
        [sys.executable, "-c", _LISTENER, str(home), str(picture)], cwd=ROOT, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("QUAID_")}, "PYTHONPATH": str(ROOT)})
    try:
        assert listener.stdout.readline().strip() == "ready 0"
        added = quaid(home, "add", str(picture), "--json")
        ident = lines(added.stdout)[0]["id"]
        listener.stdin.write("search\n")
        listener.stdin.flush()
        assert listener.stdout.readline().strip() == f"found {ident}"
        assert quaid(home, "delete", ident).returncode == 0
        listener.stdin.write("search\n")
        listener.stdin.flush()
        assert listener.stdout.readline().strip() == "found nothing"
    finally:
        listener.stdin.close()
        listener.wait(timeout=30)
    assert listener.returncode == 0, listener.stderr.read()


# A second process holding the store open: it answers "search" lines with what it finds.
_LISTENER = """
import sys
from pathlib import Path
from engine.config import load_settings
from engine.core import Quaid
home, picture = sys.argv[1], Path(sys.argv[2]).read_bytes()
with Quaid.open(load_settings(home=home, redis_url=None)) as quaid:
    print("ready", quaid.stats()["pictures"], flush=True)
    for line in sys.stdin:
        matches = quaid.search(picture).matches
        print("found", matches[0].id if matches else "nothing", flush=True)
"""

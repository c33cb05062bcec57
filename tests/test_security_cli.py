"""One validation for every interface: the CLI applies the API's rules (engine.validation), names that
are not UTF-8 are kept, and only regular files are ever opened."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from engine.errors import BadInput
from engine.store import EmbeddedRedis
from engine.validation import (
    MAX_METADATA_BYTES,
    MAX_TAG_LENGTH,
    check_metadata,
    check_name,
    check_tags,
    file_name,
    printable,
)
from tests.drawing import drawn
from tests.serverproc import run_quaid


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    yield home
    EmbeddedRedis(home / "redis").stop()


def stored_count(home: Path) -> int:
    result = run_quaid(home, "stats", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["pictures"]


# --- the shared rules -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, reason", [
    ({"a": 1}, "must be a string"),
    (7, "must be a string"),
    ("x" * (MAX_TAG_LENGTH + 1), "longer than"),
    ("\x1b[31mred", "control characters"),
    ("\x9b31mred", "control characters"),  # C1 CSI: an ANSI sequence without ESC
    ("caf\udce9", "lone surrogate"),
])
def test_tags_that_are_not_plain_text_are_refused(value, reason):
    with pytest.raises(BadInput, match=reason):
        check_tags([value])


def test_tags_are_stripped_and_deduplicated_and_other_unicode_kept():
    assert check_tags([" phish ", "phish", "фишинг", "💳", ""]) == ["phish", "фишинг", "💳"]


def test_metadata_must_be_finite_json_of_bounded_size():
    assert check_metadata({"case": [1, 2.5, None, True, {"a": "b"}]})
    for bad, reason in [({"k": "v" * MAX_METADATA_BYTES}, "larger than"), ({"k": float("nan")}, "finite"),
                        ({1: "x"}, "keys must be strings"), ({"k": b"bytes"}, "must be JSON"),
                        ({"k": "\udce9"}, "lone surrogate"), (["list"], "JSON object")]:
        with pytest.raises(BadInput, match=reason):
            check_metadata(bad)


def test_file_names_that_are_not_utf8_become_backslash_escapes_and_printing_escapes_controls():
    assert file_name(os.fsdecode(b"dir/caf\xe9.png")) == "dir/caf\\xe9.png"
    assert file_name(b"ok/\xc3\xa9.png") == "ok/é.png"
    assert check_name(file_name(os.fsdecode(b"caf\xe9.png")))  # a valid name once converted
    assert printable("a\x1b[2Jb\udce9") == "a\\x1b[2Jb\\udce9"


# --- the CLI --------------------------------------------------------------------------------------

@pytest.mark.parametrize("option, reason", [
    (("--tag", "t" * 10_000), "tag longer than 256 characters"),
    (("--meta", "note=" + "m" * 100_000), f"metadata larger than {MAX_METADATA_BYTES} bytes"),
    (("--tag", "\x1b[31mred\x1b[0m"), "tag contains control characters"),
])
def test_cli_refuses_what_the_api_refuses_in_one_line(home, tmp_path, option, reason):
    picture = tmp_path / "a.png"
    picture.write_bytes(drawn(1))
    result = run_quaid(home, "add", str(picture), *option)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"quaid add: {reason}"]
    assert "\x1b" not in result.stderr
    assert stored_count(home) == 0


def test_a_batch_keeps_going_past_odd_names_and_special_files(home, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(drawn(1))
    (Path(os.fsdecode(bytes(folder) + b"/caf\xe9.png"))).write_bytes(drawn(2))
    (folder / "evil\x1b[2J.png").write_bytes(drawn(3))
    (folder / "z.png").write_bytes(drawn(4))
    os.mkfifo(folder / "pipe.png")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "sock.png"))
    try:
        result = run_quaid(home, "add", str(folder), "--json", timeout=120)  # a hang fails, not blocks
    finally:
        listener.close()
    assert result.returncode == 1  # some inputs failed, the others were stored
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    added = sorted(Path(a["name"]).name for a in answers if a["status"] == "added")
    assert added == ["a.png", "caf\\xe9.png", "z.png"]
    errors = {Path(a["name"]).name: a["error"] for a in answers if a["status"] == "error"}
    assert errors == {
        "evil\x1b[2J.png": "name contains control characters",
        "pipe.png": "skipped: a FIFO, not a picture file",
        "sock.png": "skipped: a socket, not a picture file",
    }
    assert "\x1b" not in result.stderr and "evil\\x1b[2J.png" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 3  # one line per failed input
    assert stored_count(home) == 3


def test_a_fifo_named_directly_is_skipped_not_opened(home, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    result = run_quaid(home, "add", str(fifo), timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"quaid add: {fifo}: skipped: a FIFO, not a picture file"


def test_a_device_is_skipped_not_read(home):
    result = run_quaid(home, "search", "/dev/zero", timeout=60)
    assert result.returncode == 1
    assert "skipped: a character device" in result.stderr

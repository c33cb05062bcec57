"""``quaid hash`` and ``POST /api/v1/hash``: the references' hashes, one record per file, nothing stored.

The values are those recorded from the reference tools in
``tests/fixtures/conformance/references.json`` (see ``tests/test_conformance.py``).
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.service.app import create_app

FIXTURES = Path(__file__).parent / "fixtures" / "conformance"
RECORDED = json.loads((FIXTURES / "references.json").read_text())["pictures"]
HEADERS = {"X-Quaid-Request": "1"}  # the service's guard against requests a web page could forge
COMPARED = ("ahash", "phash", "dhash", "whash", "pdq", "pdq_quality", "goldberg")


def _matches_references(record: dict, name: str) -> None:
    assert record["file"].endswith(name)
    for algorithm in COMPARED:
        assert record["hashes"][algorithm] == RECORDED[name][algorithm], algorithm


def test_cli_prints_one_json_record_per_file_and_line(capsys):
    names = ["page.png", "photo.jpg", "transparent.png"]
    code = main(["hash", "--json", *(str(FIXTURES / n) for n in names)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == len(names)
    for line, name in zip(lines, names, strict=True):
        record = json.loads(line)
        assert set(record) == {"file", "id", "hashes"}
        _matches_references(record, name)


def test_cli_bad_file_fails_alone_with_a_one_line_reason(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a picture")
    code = main(["hash", "--json", str(bad), str(FIXTURES / "page.png")])
    captured = capsys.readouterr()
    assert code == 1
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert lines[0]["error"] and lines[0]["hashes"] is None
    _matches_references(lines[1], "page.png")
    assert len(captured.err.strip().splitlines()) == 1 and "notes.png" in captured.err


def test_cli_sixteen_bit_picture_gets_no_pdq_but_the_other_hashes(tmp_path, capsys):
    """ThreatExchange's PDQ hasher refuses more than 8 bits a channel; quaid says null, not a guess."""
    deep = tmp_path / "deep.png"
    levels = np.random.default_rng(7).integers(0, 65535, (60, 80), dtype=np.uint16)
    Image.fromarray(levels).save(deep)
    assert Image.open(deep).mode.startswith("I;16")
    assert main(["hash", "--json", str(deep)]) == 0
    hashes = json.loads(capsys.readouterr().out)["hashes"]
    assert hashes["pdq"] is None and hashes["pdq_quality"] is None
    assert len(hashes["phash"]) == 16 and len(hashes["goldberg"]) == 648 and len(hashes["forbild"]) == 64


def test_cli_text_output_names_each_hash(capsys):
    assert main(["hash", str(FIXTURES / "page.png")]) == 0
    out = capsys.readouterr().out
    assert RECORDED["page.png"]["pdq"] in out and RECORDED["page.png"]["phash"] in out


@pytest.fixture
def client(quaid):
    return create_app(replace(quaid.settings), quaid=quaid).test_client()


def test_api_answers_the_same_record_and_stores_nothing(client, quaid):
    before = (quaid.stats()["pictures"], quaid.redis.dbsize())
    data = (FIXTURES / "palette.png").read_bytes()
    response = client.post("/api/v1/hash", data={"file": (io.BytesIO(data), "palette.png")},
                           content_type="multipart/form-data", headers=HEADERS)
    assert response.status_code == 200, response.get_data(as_text=True)
    _matches_references(response.get_json(), "palette.png")
    assert (quaid.stats()["pictures"], quaid.redis.dbsize()) == before  # no picture, no key written


def test_api_refuses_bad_input_with_json_errors(client):
    response = client.post("/api/v1/hash", data={"file": (io.BytesIO(b"GIF89a broken"), "x.gif")},
                           content_type="multipart/form-data", headers=HEADERS)
    assert response.status_code == 415 and "not a picture" in response.get_json()["error"]  # as /search
    response = client.post("/api/v1/hash", data={}, content_type="multipart/form-data", headers=HEADERS)
    assert response.status_code == 400 and "file" in response.get_json()["error"]
    response = client.post("/api/v1/hash", data=b"{}", content_type="application/json", headers=HEADERS)
    assert response.status_code == 415 and response.get_json()["error"]

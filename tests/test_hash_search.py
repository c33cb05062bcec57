"""Search and store by a partner's hashes: found from the stored features, never accepted.

The hashes searched are those ``quaid hash`` writes for the same file (as ThreatExchange's
PDQ hasher, ImageHash and perception write them), so the test is the partner's round trip.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest

from engine.algorithms.pdq_screen import PDQScreen
from engine.cli import main
from engine.core import Quaid
from engine.errors import BadInput
from engine.exchange import hash_record
from engine.hash_import import import_list, read_list, reference_id
from engine.service.app import create_app
from tests.drawing import drawn, variant
from tests.test_orb import site_page
from tests.test_same_template import sibling_page

HEADERS = {"X-Quaid-Request": "1"}


def png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def exchanged(data: bytes) -> dict:
    return hash_record(data, "partner.png")["hashes"]


@pytest.fixture
def stored(quaid) -> dict[str, bytes]:
    pictures = {"page": png(site_page(5)), "other": drawn(31, size=(800, 500)), "photo": drawn(32)}
    for name, data in pictures.items():
        quaid.add(data, name=name)
    return pictures


def test_a_partners_hashes_find_the_picture_but_never_accept_it(quaid, stored):
    hashes = exchanged(stored["page"])
    answer = quaid.search_hashes({"pdq": hashes["pdq"], "phash": hashes["phash"]})
    best = answer["matches"][0]
    assert best["name"] == "page" and answer["decision"] == best["decision"] == "to-review"
    assert answer["evidence"] == "hashes-only" and best["reason"] == "hashes-only"
    assert answer["compared"] == ["pdq", "phash"] and set(best["algorithms"]) == {"pdq", "phash"}
    assert all(v["decision"] == "yes" for v in best["algorithms"].values())  # identical, still not accepted
    every = quaid.search_hashes({"pdq": hashes["pdq"]}, include_rejected=True)["matches"]
    assert len(every) == 3 and "accepted" not in {m["decision"] for m in every}


def test_perceptions_phash_alone_finds_a_copy(quaid, stored):
    value = exchanged(variant(stored["other"]))["phash_dct_base64"]
    answer = quaid.search_hashes({"phash_dct_base64": value})
    assert answer["matches"][0]["name"] == "other" and answer["compared"] == ["phash_dct_base64"]


def test_a_sibling_pages_hashes_are_at_best_to_review(quaid, stored):
    """Hashes put template siblings close; with hashes only quaid says review, never accept."""
    hashes = exchanged(png(sibling_page(5, 1)))
    answer = quaid.search_hashes({"pdq": hashes["pdq"], "dhash": hashes["dhash"]}, include_rejected=True)
    assert answer["decision"] in ("to-review", "rejected")
    assert all(m["decision"] != "accepted" for m in answer["matches"])


def test_unrelated_hashes_find_nothing(quaid, stored):
    answer = quaid.search_hashes({"pdq": "0" * 64})
    assert answer == {"decision": "rejected", "evidence": "hashes-only", "compared": ["pdq"], "matches": []}


@pytest.mark.parametrize("hashes, reason", [
    ({}, "object"), ({"md5": "0" * 32}, "unknown hash"), ({"pdq": "xyz"}, "pdq"),
    ({"phash": 12}, "string"), ({"phash_dct_base64": "not base64!"}, "phash_dct_base64"),
    ({"ahash": "0" * 16}, "none of these hashes can be searched"),  # ahash is not enabled by default
    (["pdq"], "object"),
])
def test_bad_hashes_are_one_line_bad_input(quaid, hashes, reason):
    with pytest.raises(BadInput, match=reason):
        quaid.search_hashes(hashes)


PDQ_CSV = """# pdq-photo-hasher output
{a},100,phish-kit-a.png
{b},87,phish-kit-b.png
nothex,100,broken.png
{a},100,phish-kit-a-again.png
{c},100,"evil\x1b[2Jname.png"
"""


def test_a_pdq_list_is_stored_as_hash_only_references_and_a_bad_line_fails_alone(quaid, stored):
    a, b, c = (exchanged(data)["pdq"] for data in (stored["page"], drawn(77), drawn(78)))
    results = import_list(quaid, read_list(PDQ_CSV.format(a=a, b=b, c=c), "pdq-csv"), tags=["partner:x"])
    assert [r.get("status", "error") for r in results] == ["added", "added", "error", "duplicate", "error"]
    assert [r["line"] for r in results] == [2, 3, 4, 5, 6] and "pdq" in results[2]["error"]
    assert "control characters" in results[4]["error"]  # a partner's name never reaches a terminal raw
    record = quaid.get(results[0]["id"])
    assert record.to_json()["hash_only"] is True and record.name == "phish-kit-a.png"
    assert record.tags == ("partner:x",) and quaid.image(record.id) is None
    assert record.id == reference_id({"pdq": a}) and quaid.get(results[1]["id"]).metadata["pdq_quality"] == 87
    assert "hash_only" not in quaid.get(quaid.search(stored["other"]).matches[0].id).to_json()


def test_a_picture_search_meets_a_hash_only_reference_as_to_review(quaid):
    """Its PDQ alone votes yes; without the hash-only rule the match would be accepted."""
    page = png(site_page(7))
    import_list(quaid, read_list(f"pdq {exchanged(page)['pdq']}\n", "lines"))
    match = quaid.search(page).matches[0]
    assert match.decision.value == "to-review" and match.verdict.reason == "hashes-only"
    assert match.verdict.algorithms["pdq-screen"].vote.value == "yes"


def test_bare_values_need_their_hash_name():
    entries = list(read_list("0123456789abcdef\nphash 0123456789abcdef\n", "lines", hash_name="dhash"))
    assert entries[0].hashes == {"dhash": "0123456789abcdef"}
    assert entries[1].hashes == {"phash": "0123456789abcdef"}
    assert list(read_list("0123456789abcdef\n", "lines"))[0].error
    with pytest.raises(BadInput, match="format"):
        list(read_list("", "stix"))


def test_hash_only_references_never_make_the_store_stale(redis, quaid_settings, monkeypatch):
    """They hold a partner's hashes, not quaid's extraction: an algorithm upgrade leaves them as they are."""
    with Quaid(redis, quaid_settings) as quaid:
        import_list(quaid, read_list(f"pdq {'ab' * 32}\n", "lines"))
    monkeypatch.setattr(PDQScreen, "version", PDQScreen.version + 1)
    with Quaid(redis, quaid_settings) as reopened:  # no StaleStore
        assert reopened.search_hashes({"pdq": "ab" * 32})["matches"][0]["decision"] == "to-review"


# --- CLI and API ---------------------------------------------------------------------------------

def test_cli_search_by_hash_and_import(local_store, tmp_path, capsys):
    page = tmp_path / "page.png"
    page.write_bytes(png(site_page(5)))
    assert main(["add", str(page)]) == 0
    pdq = exchanged(page.read_bytes())["pdq"]
    capsys.readouterr()
    assert main(["search", "--hash", f"pdq={pdq}", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["matches"][0]["name"].endswith("page.png") and answer["decision"] == "to-review"
    listing = tmp_path / "partner.txt"
    listing.write_text(f"pdq {pdq[::-1]}\nnot-a-type 00\n")
    assert main(["import-hashes", str(listing), "--format", "lines"]) == 1
    captured = capsys.readouterr()
    assert "1 added, 0 already stored, 1 failed" in captured.out
    assert len(captured.err.strip().splitlines()) == 1 and "line 2" in captured.err
    assert main(["search", "--hash", "pdq=zz"]) == 2 and "pdq" in capsys.readouterr().err


@pytest.fixture
def client(quaid):
    return create_app(replace(quaid.settings), quaid=quaid).test_client()


def test_api_search_by_hashes_and_import(client, quaid, stored):
    hashes = exchanged(stored["page"])
    found = client.post("/api/v1/search/hashes", json={"hashes": {"pdq": hashes["pdq"]}, "top": 2})
    assert found.status_code == 200, found.get_json()
    assert found.get_json()["matches"][0]["name"] == "page" and found.get_json()["evidence"] == "hashes-only"
    imported = client.post("/api/v1/hashes", json={"format": "lines", "list": f"dhash {hashes['dhash']}\nx",
                                                    "tags": ["partner"]}, headers=HEADERS)
    body = imported.get_json()
    assert imported.status_code == 200 and (body["added"], body["failed"]) == (1, 1)
    picture = client.get(f"/api/v1/pictures/{body['results'][0]['id']}").get_json()
    assert picture["hash_only"] is True and picture["format"] == "hashes"
    assert client.get(f"/api/v1/pictures/{body['results'][0]['id']}/image").status_code == 404


@pytest.mark.parametrize("path, body", [
    ("/api/v1/search/hashes", {"hashes": {"pdq": "nope"}}),
    ("/api/v1/search/hashes", {"hashes": {"pdq": "0" * 64}, "top": 0}),
    ("/api/v1/search/hashes", {"hashes": {"pdq": "0" * 64}, "colour": 1}),
    ("/api/v1/search/hashes", ["pdq"]),
    ("/api/v1/hashes", {"format": "stix", "list": ""}),
    ("/api/v1/hashes", {"format": "lines", "list": 7}),
])
def test_api_refuses_bad_hash_requests_with_json_errors(client, path, body):
    response = client.post(path, json=body, headers=HEADERS)
    assert response.status_code == 400 and response.get_json()["error"]


def test_a_hash_only_references_own_matches_are_at_best_to_review(quaid, stored):
    """Its picture page lists the stored pictures near its hashes, none of them accepted."""
    from engine.neighbours import stored_matches

    hashes = exchanged(stored["page"])
    added = quaid.add_hashes({"pdq": hashes["pdq"], "phash": hashes["phash"], "dhash": hashes["dhash"]})
    found = stored_matches(quaid, added.id, top=5)
    assert found[0]["name"] == "page" and found[0]["decision"] == "to-review"
    assert found[0]["reason"] == "hashes-only"
    assert quaid.add_hashes({"dhash": hashes["dhash"], "phash": hashes["phash"],
                             "pdq": hashes["pdq"].upper()}).status == "duplicate"


def test_graph_edges_to_a_hash_only_reference_are_never_accepted(quaid, stored):
    hashes = exchanged(stored["page"])
    added = quaid.add_hashes({"pdq": hashes["pdq"], "phash": hashes["phash"], "dhash": hashes["dhash"]})
    edges = [e for e in quaid.export("graph")["edges"] if added.id in (e["source"], e["target"])]
    assert edges and all(e["decision"] != "accepted" for e in edges)
    assert any(e["decision"] == "to-review" and e["reason"] == "hashes-only" for e in edges)


def test_an_unrelated_picture_does_not_meet_a_hash_only_reference(quaid):
    """Against a reference holding one hash, the calibrated merge would take pdq-screen's loose
    review threshold (half the bits) for a match; the hashes' own thresholds reject it."""
    reference = exchanged(drawn(720, size=(1280, 800)))["pdq"]
    import_list(quaid, read_list(f"pdq {reference}\n", "lines"))
    every = quaid.search(drawn(702), include_rejected=True).matches
    assert [m.decision.value for m in every] == ["rejected"] and every[0].verdict.reason == "hashes-only"
    assert quaid.search(drawn(702)).matches == []

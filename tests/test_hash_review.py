"""A search by a partner's hashes feeds the review queue like a picture search; low-quality PDQ is refused.

ThreatExchange does not match on PDQ hashes of quality under 50 (python-threatexchange,
``threatexchange/signal_type/pdq/signal.py``, ``PdqSignal.QUALITY_THRESHOLD = 50``, read at
facebook/ThreatExchange commit baefb4e): a partner's list line with such a quality fails alone,
and a hash search that gives such a quality is refused.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from PIL import Image

from engine.cli import main
from engine.errors import BadInput
from engine.hash_import import import_list, read_list, reference_id
from engine.review import ReviewQueue
from engine.service.app import create_app
from tests.drawing import drawn
from tests.test_hash_search import exchanged, png
from tests.test_orb import site_page

HEADERS = {"X-Quaid-Request": "1"}


@pytest.fixture
def client(quaid):
    return create_app(replace(quaid.settings), quaid=quaid).test_client()


@pytest.fixture
def page(quaid) -> bytes:
    data = png(site_page(5))
    quaid.add(data, name="page")
    quaid.add(drawn(31, size=(800, 500)), name="other")
    return data


def test_a_hash_search_to_review_is_queued_without_a_picture(client, page):
    pdq = exchanged(page)["pdq"]
    found = client.post("/api/v1/search/hashes", json={"hashes": {"pdq": pdq}}).get_json()
    assert found["decision"] == "to-review"
    pending = client.get("/api/v1/review").get_json()
    assert pending["total"] == 1
    item = pending["items"][0]
    assert item["match"] == found["matches"][0]["id"] and item["match_name"] == "page"
    assert item["evidence"] == "hashes-only" and item["hashes"] == {"pdq": pdq}
    assert item["query"] == reference_id({"pdq": pdq}) and item["query_name"] == f"pdq={pdq}"
    assert item["algorithms"] == found["matches"][0]["algorithms"]
    image = client.get(f"/api/v1/review/{item['item']}/image")
    assert image.status_code == 404 and image.get_json()["error"]
    client.post("/api/v1/search/hashes", json={"hashes": {"pdq": pdq}})  # the same search: no new item
    assert client.get("/api/v1/review").get_json()["total"] == 1


def test_a_judged_hash_item_is_kept_but_not_a_calibration_label(client, quaid, page):
    """Its votes are the exchanged hashes' distances, not the algorithms': calibration must not fit them."""
    client.post("/api/v1/search/hashes", json={"hashes": {"pdq": exchanged(page)["pdq"]}})
    item = client.get("/api/v1/review").get_json()["items"][0]["item"]
    judged = client.post(f"/api/v1/review/{item}", json={"verdict": "accepted"}, headers=HEADERS)
    assert judged.status_code == 200 and judged.get_json()["verdict"] == "accepted"
    done = client.get("/api/v1/review?status=done").get_json()
    assert [i["item"] for i in done["items"]] == [item] and done["items"][0]["evidence"] == "hashes-only"
    assert client.get("/api/v1/review/labels").get_json()["labels"] == []


def test_a_rejected_hash_search_queues_nothing(client, page):
    client.post("/api/v1/search/hashes", json={"hashes": {"pdq": "0" * 64}})
    assert client.get("/api/v1/review").get_json()["total"] == 0


def test_cli_hash_search_queues_review_and_refuses_low_quality(local_store, tmp_path, capsys):
    path = tmp_path / "page.png"
    path.write_bytes(png(site_page(5)))
    assert main(["add", str(path)]) == 0
    hashes = exchanged(path.read_bytes())
    capsys.readouterr()
    assert main(["search", "--hash", f"pdq={hashes['pdq']}", "--hash", "pdq_quality=50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "to-review"
    items = ReviewQueue(local_store).items()["items"]
    assert len(items) == 1 and items[0]["evidence"] == "hashes-only"
    assert main(["search", "--hash", f"pdq={hashes['pdq']}", "--hash", "pdq_quality=49"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "quality 49 is under 50" in err[0]


def test_the_quality_quaid_hash_writes_is_checked_in_a_search(quaid, page):
    """A flat picture's PDQ has quality 0: searching with the pair ``quaid hash`` wrote is refused."""
    flat = exchanged(png(Image.new("RGB", (640, 400), (200, 200, 200))))
    assert flat["pdq_quality"] < 50
    with pytest.raises(BadInput, match="under 50"):
        quaid.search_hashes({"pdq": flat["pdq"], "pdq_quality": flat["pdq_quality"]})
    good = exchanged(page)
    answer = quaid.search_hashes({"pdq": good["pdq"], "pdq_quality": good["pdq_quality"]})
    assert answer["matches"][0]["name"] == "page" and answer["compared"] == ["pdq"]


@pytest.mark.parametrize("hashes, reason", [
    ({"pdq": "ab" * 32, "pdq_quality": 10}, "under 50"),
    ({"pdq": "ab" * 32, "pdq_quality": "ten"}, "integer from 0 to 100"),
    ({"pdq": "ab" * 32, "pdq_quality": 101}, "integer from 0 to 100"),
    ({"pdq": "ab" * 32, "pdq_quality": True}, "integer from 0 to 100"),
    ({"phash": "0" * 16, "pdq_quality": 90}, "give the pdq hash too"),
])
def test_api_refuses_a_low_or_malformed_pdq_quality_with_json(client, hashes, reason):
    response = client.post("/api/v1/search/hashes", json={"hashes": hashes})
    assert response.status_code == 400 and reason in response.get_json()["error"]


def test_a_low_quality_line_of_a_pdq_list_fails_alone(quaid):
    a, b, c = ("a1" * 32, "b2" * 32, "c3" * 32)
    text = f"{a},49,flat.png\n{b},50,edge.png\n{c},,no-quality.png\n{a[::-1]},abc,bad.png\n"
    results = import_list(quaid, read_list(text, "pdq-csv"))
    assert [r.get("status", "error") for r in results] == ["error", "added", "added", "error"]
    assert "quality 49 is under 50" in results[0]["error"] and "\n" not in results[0]["error"]
    assert "integer from 0 to 100" in results[3]["error"]
    assert quaid.records.get(reference_id({"pdq": a})) is None
    assert quaid.get(results[1]["id"]).metadata["pdq_quality"] == 50

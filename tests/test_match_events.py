"""Retroactive matches as events: a picture added announces the earlier pictures it matched.

Through the engine facade on a real Redis, and ``GET /api/v1/events`` through the app.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.errors import BadInput
from engine.service.app import create_app
from engine.store import keys
from engine.store.match_events import MatchEvents
from tests.drawing import drawn, variant
from tests.test_hash_search import png
from tests.test_orb import site_page
from tests.test_same_template import sibling_page


@pytest.fixture
def added(quaid) -> dict[str, str]:
    """An earlier page, then a re-encoded copy of it (accepted), a sibling page (to-review) and an
    unrelated photo (no match)."""
    page = png(site_page(5))
    ids = {"page": quaid.add(page, name="page.png", metadata={"misp_event_uuid": "e-1"}).id}
    ids["copy"] = quaid.add(variant(page, 1.0, quality=90), name="copy.jpg", tags=["kit:x"],
                            metadata={"source": "feed"}).id
    ids["sibling"] = quaid.add(png(sibling_page(5, 1)), name="sibling.png").id
    ids["photo"] = quaid.add(drawn(50), name="photo.png").id
    return ids


def test_an_added_picture_announces_the_earlier_pictures_it_matched(quaid, added):
    page = quaid.events.read()
    events = page["events"]
    assert [e["id"] for e in events] == [added["copy"], added["sibling"]]  # the first and the photo: none
    copy, sibling = events
    assert copy["name"] == "copy.jpg" and copy["tags"] == ["kit:x"] and copy["metadata"] == {"source": "feed"}
    assert [(m["id"], m["decision"]) for m in copy["matches"]] == [(added["page"], "accepted")]
    assert copy["cluster"] == quaid.get(added["page"]).cluster
    assert copy["added"] == quaid.get(added["copy"]).to_json()["added"]
    assert {m["id"] for m in sibling["matches"]} >= {added["page"]}
    assert all(m["decision"] == "to-review" and m["reason"] == "same-template" for m in sibling["matches"])
    assert page["next"] == sibling["event"] and page["missed"] is False


def test_adding_the_same_bytes_again_announces_nothing(quaid, added):
    before = quaid.events.last()
    assert quaid.add(png(site_page(5))).status == "duplicate"
    assert quaid.events.read(before)["events"] == []


def test_reading_resumes_after_a_position_and_pages(quaid, added):
    first = quaid.events.read(limit=1)
    assert [e["id"] for e in first["events"]] == [added["copy"]]
    rest = quaid.events.read(first["next"])
    assert [e["id"] for e in rest["events"]] == [added["sibling"]]
    assert quaid.events.read(rest["next"]) == {"events": [], "next": rest["next"], "missed": False}
    assert quaid.events.read(first["next"].split("-")[0])["events"]  # a bare millisecond is a position too


def test_a_reader_is_told_when_events_it_had_not_read_were_trimmed(quaid, redis):
    events = MatchEvents(redis)
    positions = [events.publish({"id": f"{i:064x}"}, [{"id": "0" * 64}]) for i in range(4)]
    redis.xtrim(keys.MATCH_EVENTS, maxlen=2, approximate=False)  # what the cap does, exactly
    assert events.read(positions[0])["missed"] is True  # event 1 is gone unread
    assert events.read("0")["missed"] is True
    caught_up = events.read(positions[1])  # only its own last event is gone: nothing missed
    assert caught_up["missed"] is False and len(caught_up["events"]) == 2


@pytest.mark.parametrize("position", ["abc", "1-2-3", "-1", "1" * 25, "1-x"])
def test_a_malformed_position_is_refused(quaid, position):
    with pytest.raises(BadInput, match="event position"):
        quaid.events.read(position)


def test_the_api_serves_the_events(quaid, added):
    client = create_app(replace(quaid.settings), quaid=quaid).test_client()
    answer = client.get("/api/v1/events?after=0&limit=1")
    assert answer.status_code == 200
    body = answer.get_json()
    assert [e["id"] for e in body["events"]] == [added["copy"]] and body["missed"] is False
    rest = client.get(f"/api/v1/events?after={body['next']}").get_json()
    assert [e["id"] for e in rest["events"]] == [added["sibling"]]
    for query in ("after=yesterday", "limit=0", "limit=5000"):
        refused = client.get(f"/api/v1/events?{query}")
        assert refused.status_code == 400 and "error" in refused.get_json()
    foreign = client.get("/api/v1/events", headers={"Origin": "https://phish.example"})
    assert foreign.status_code == 403


def test_the_cli_prints_events_as_json_lines_and_the_next_position(local_store, tmp_path, capsys):
    import json

    from engine.cli import main

    page, copy = tmp_path / "page.png", tmp_path / "copy.jpg"
    page.write_bytes(png(site_page(5)))
    copy.write_bytes(variant(png(site_page(5)), 1.0, quality=90))
    assert main(["add", str(page), str(copy)]) == 0
    capsys.readouterr()
    assert main(["events"]) == 0
    out, err = capsys.readouterr()
    [event] = [json.loads(line) for line in out.splitlines()]
    assert event["name"].endswith("copy.jpg") and event["matches"][0]["decision"] == "accepted"
    assert err.strip() == f"next: {event['event']}"
    assert main(["events", "--after", event["event"]]) == 0 and capsys.readouterr().out == ""
    assert main(["events", "--after", "soon"]) == 2
    assert "event position" in capsys.readouterr().err


def test_a_store_error_on_the_event_loses_the_event_not_the_picture(quaid, monkeypatch, caplog):
    import redis as redis_module

    page = png(site_page(5))
    quaid.add(page)

    def down(*_args, **_kwargs):
        raise redis_module.ConnectionError("connection lost")

    monkeypatch.setattr(quaid.events, "publish", down)
    result = quaid.add(variant(page, 1.0, quality=90))
    assert result.status == "added" and quaid.get(result.id).name == ""
    assert "match event of" in caplog.text and "connection lost" in caplog.text


def test_a_partners_hash_reference_announces_the_pictures_it_is_near(quaid):
    from engine.exchange import hash_record

    page = png(site_page(5))
    earlier = quaid.add(page).id
    before = quaid.events.last()
    pdq = hash_record(variant(page, 1.0, quality=90), "partner.jpg")["hashes"]["pdq"]
    reference = quaid.add_hashes({"pdq": pdq}, name="partner-list-entry")
    [event] = quaid.events.read(before)["events"]
    assert event["id"] == reference.id and event["name"] == "partner-list-entry"
    assert [(m["id"], m["decision"], m["reason"]) for m in event["matches"]] == [
        (earlier, "to-review", "hashes-only")]
    assert quaid.add_hashes({"pdq": pdq}).status == "duplicate"
    far = hash_record(drawn(77), "other.png")["hashes"]["pdq"]
    quaid.add_hashes({"pdq": far})  # near nothing stored: no event
    assert quaid.events.read(event["event"])["events"] == []


# --- with the noise bank (engine.noise): noise is news to nobody ----------------------------

def test_a_picture_answered_as_noise_announces_nothing(quaid):
    page = png(site_page(6))
    original = quaid.add(page).id
    quaid.noise.mark(original)
    before = quaid.events.last()
    copy = quaid.add(variant(page, 1.0, quality=90))
    assert copy.status == "added" and copy.noise.reason == "matches-noise" and copy.noise.picture == original
    assert quaid.events.read(before)["events"] == []


def test_noise_pictures_are_never_named_among_the_earlier_ones(quaid):
    page = png(site_page(5))
    earlier = quaid.add(page, name="page.png").id
    sibling = quaid.add(png(sibling_page(5, 1)), name="sibling.png").id
    copy = variant(page, 1.0, quality=90)
    assert sibling in [m.id for m in quaid.search(copy).matches]  # the copy matches it too
    quaid.noise.mark(sibling)
    before = quaid.events.last()
    assert quaid.add(copy, name="copy.jpg").noise is None  # its best match is the page
    [event] = quaid.events.read(before)["events"]
    assert [m["id"] for m in event["matches"]] == [earlier]


def test_a_hash_reference_whose_best_match_is_noise_announces_nothing(quaid):
    from engine.exchange import hash_record

    page = png(site_page(5))
    noise = quaid.add(page).id
    copy = quaid.add(variant(page, 1.0, quality=90)).id  # stored before the page became noise
    quaid.noise.mark(noise)
    pdq = hash_record(page, "partner.png")["hashes"]["pdq"]
    found = quaid.search_hashes({"pdq": pdq})
    assert found["noise"]["picture"] == noise and copy in [m["id"] for m in found["matches"]]
    before = quaid.events.last()
    assert quaid.add_hashes({"pdq": pdq}).status == "added"
    assert quaid.events.read(before)["events"] == []

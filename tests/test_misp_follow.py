"""Retroactive matches in MISP (``quaid misp-sync --follow``): a real quaid service, the MISP stand-in.

A picture added to quaid after the earlier events were synchronised (a reference added with
the API, or an attachment registered from another event) is recorded in those earlier events,
under the write-back's rules: the narrowest distribution of the events involved (your
organisation only for a reference known only to quaid), events of other organisations and
events this key cannot see left alone (MISP 2.5.1 rules as :mod:`misp_standin` enforces them).
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys

import pytest
from drawing import drawn, variant
from misp_standin import PARTNER, MISPStandIn, running
from misp_support import ROOT, start_quaid, stop
from PIL import Image

from engine.cli import main as quaid_cli
from quaid_client import QuaidClient

sys.path.insert(0, str(ROOT / "misp_modules" / "writeback"))

pytestmark = pytest.mark.misp

REVIEW_OR_ACCEPT = {'workflow:state="complete"', 'misp:automation-level="unsupervised"'}


@pytest.fixture(scope="module")
def quaid_url(tmp_path_factory):
    home = tmp_path_factory.mktemp("quaid-home")
    process, url = start_quaid(home)
    yield url
    stop(process, home)


@pytest.fixture
def state(quaid_url, tmp_path):
    """A position file at the newest event: earlier tests' events are not this test's business."""
    with QuaidClient(quaid_url) as client:
        position = "0-0"
        while True:
            page = client.events(after=position, limit=1000)
            if not page["events"]:
                break
            position = page["next"]
    path = tmp_path / "position"
    path.write_text(position + "\n")
    return path


def misp_sync(url: str, quaid_url: str, *options: str) -> int:
    return quaid_cli(["misp-sync", "--url", url, "--key", "misp-test-key", "--quaid", quaid_url, *options])


def proxies(event: dict) -> list[dict]:
    return [o for o in event["Object"] if "same or nearly the same picture" in o["comment"]]


def tags(attribute: dict) -> set[str]:
    return {t["name"] for t in attribute["Tag"]}


def page(seed: int) -> bytes:
    return drawn(seed, size=(1280, 800))


def copy(seed: int) -> bytes:
    return variant(page(seed), 0.9)


def earlier_event(misp: MISPStandIn, seed: int, **event) -> tuple[dict, dict]:
    found = misp.add_event("earlier", **event)
    return found, misp.add_attachment(found, "login.png", page(seed))


def test_a_reference_added_later_is_recorded_in_the_earlier_event(quaid_url, state, capsys):
    misp = MISPStandIn()
    e1, a1 = earlier_event(misp, 501, distribution=3)
    with running(misp) as url:
        assert misp_sync(url, quaid_url, "--since", "2026-11-01") == 0  # e1's picture registered; no match
        assert misp.writes == []
        with QuaidClient(quaid_url) as client:
            reference = client.add(copy(501), name="kit-reference.jpg")
        assert misp_sync(url, quaid_url, "--follow", "--state", str(state), "--distribution", "3") == 0
        written = list(misp.writes)
        assert misp_sync(url, quaid_url, "--follow", "--state", str(state)) == 0  # resumes after it
        state.write_text("0-0\n")  # even all events again: nothing new to write
        assert misp_sync(url, quaid_url, "--follow", "--state", str(state)) == 0
    assert misp.writes == written
    assert tags(a1) == REVIEW_OR_ACCEPT
    [proxy] = proxies(e1)
    link = f"{quaid_url}/#/picture/{reference['id']}"
    assert "quaid's reference" in proxy["comment"] and link in proxy["comment"]
    assert proxy["distribution"] == "0"  # known only to quaid: your organisation only, whatever the ceiling
    assert {a["object_relation"]: a["value"] for a in proxy["Attribute"]} == {
        "filename": "kit-reference.jpg", "link": link}
    comment = next(a["comment"] for a in proxy["Attribute"] if a["value"] == link)
    assert "retroactive quaid: accepted" in comment
    wrapper = next(o for o in e1["Object"] if "picture of attachment" in o["comment"])
    assert (proxy["uuid"], "similar") in [(r["referenced_uuid"], r["relationship_type"])
                                          for r in wrapper["ObjectReference"]]
    assert "earlier pictures in MISP: 1" in capsys.readouterr().out


def test_a_picture_of_another_event_is_named_no_wider_than_both_events(quaid_url, state):
    misp = MISPStandIn()
    e1, a1 = earlier_event(misp, 511, distribution=3)
    e5 = misp.add_event("later", distribution=1)
    a5 = misp.add_attachment(e5, "copy.jpg", copy(511))
    with running(misp) as url:
        assert misp_sync(url, quaid_url, "--event", e1["id"]) == 0
        with QuaidClient(quaid_url) as client:  # e5's picture registered as the expansion module does
            client.add(copy(511), name="copy.jpg",
                       metadata={"misp_event_uuid": e5["uuid"], "misp_attribute_uuid": a5["uuid"]})
        assert misp_sync(url, quaid_url, "--follow", "--state", str(state), "--distribution", "3") == 0
    [proxy] = proxies(e1)
    assert a5["uuid"] in proxy["comment"] and e5["uuid"] in proxy["comment"]
    assert proxy["distribution"] == "1"  # the narrower of e1 (3) and e5 (1)
    assert proxies(e5) == []  # the later event is the regular write-back's business


def test_events_of_other_organisations_and_unseen_events_are_left_alone(quaid_url, state, capsys):
    misp = MISPStandIn()
    pulled, pulled_attachment = earlier_event(misp, 521, distribution=3, orgc=PARTNER)
    hidden, _ = earlier_event(misp, 522, distribution=0, orgc=PARTNER)
    with running(misp) as url, QuaidClient(quaid_url) as client:
        for event, seed in ((pulled, 521), (hidden, 522)):  # registered when the key could still see them
            attachment = event["Attribute"][0]
            client.add(page(seed), name="login.png",
                       metadata={"misp_event_uuid": event["uuid"], "misp_attribute_uuid": attachment["uuid"]})
            client.add(copy(seed), name=f"new-{seed}.jpg")
        assert misp_sync(url, quaid_url, "--follow", "--state", str(state)) == 0
    assert misp.writes == [] and tags(pulled_attachment) == set()
    out = capsys.readouterr().out
    assert "earlier pictures in events of other organisations left alone: 1" in out
    assert "cannot see or no longer holding them: 1" in out


def test_a_new_picture_of_an_event_this_key_cannot_see_is_not_named(quaid_url, state, capsys):
    misp = MISPStandIn()
    e1, a1 = earlier_event(misp, 551, distribution=3)
    hidden = misp.add_event("partner's own", distribution=0, orgc=PARTNER)
    secret = misp.add_attachment(hidden, "their-copy.jpg", copy(551))
    with running(misp) as url:
        assert misp_sync(url, quaid_url, "--event", e1["id"]) == 0
        with QuaidClient(quaid_url) as client:  # registered from the partner's instance, say
            client.add(copy(551), name="their-copy.jpg",
                       metadata={"misp_event_uuid": hidden["uuid"], "misp_attribute_uuid": secret["uuid"]})
        assert misp_sync(url, quaid_url, "--follow", "--state", str(state)) == 0
    assert misp.writes == [] and tags(a1) == set()
    assert "new pictures of events this key cannot see, not named: 1" in capsys.readouterr().out


def test_the_difference_is_attached_within_the_objects_distribution(quaid_url, state):
    misp = MISPStandIn()
    e1, a1 = earlier_event(misp, 531, distribution=2)
    with running(misp) as url:
        assert misp_sync(url, quaid_url, "--event", e1["id"]) == 0
        with QuaidClient(quaid_url) as client:
            reference = client.add(copy(531), name="reference.jpg")
        assert misp_sync(url, quaid_url, "--follow", "--state", str(state), "--attach-diff") == 0
    [proxy] = proxies(e1)
    [attachment] = [a for a in proxy["Attribute"] if a["object_relation"] == "attachment"]
    assert attachment["type"] == "attachment" and attachment["distribution"] == "5"  # the object's
    own = hashlib.sha256(page(531)).hexdigest()
    assert attachment["value"] == f"quaid-difference-{own[:12]}-{reference['id'][:12]}.png"
    drawing = Image.open(io.BytesIO(base64.b64decode(attachment["data"])))
    assert drawing.format == "PNG" and drawing.width > 800


def test_a_dry_run_writes_nothing_and_keeps_the_position(quaid_url, state, capsys):
    misp = MISPStandIn()
    e1, _ = earlier_event(misp, 541)
    with running(misp) as url:
        assert misp_sync(url, quaid_url, "--event", e1["id"]) == 0
        with QuaidClient(quaid_url) as client:
            client.add(copy(541), name="reference.jpg")
        before = state.read_text()
        assert misp_sync(url, quaid_url, "--follow", "--state", str(state), "--dry-run") == 0
        assert misp.writes == [] and state.read_text() == before
        assert "would write:" in capsys.readouterr().out
        assert misp_sync(url, quaid_url, "--follow", "--state", str(state)) == 0
    assert proxies(e1) and state.read_text() != before


def test_follow_refuses_an_event_selection(quaid_url, state, capsys):
    misp = MISPStandIn()
    with running(misp) as url:
        assert misp_sync(url, quaid_url, "--follow", "--since", "2026-11-01", "--state", str(state)) == 2
    assert "--follow" in capsys.readouterr().err


def test_a_corrupt_position_file_stops_with_a_reason(quaid_url, tmp_path, capsys):
    misp = MISPStandIn()
    broken = tmp_path / "position"
    broken.write_text("yesterday")
    with running(misp) as url:
        assert misp_sync(url, quaid_url, "--follow", "--state", str(broken)) == 2
    assert "does not hold an event position" in capsys.readouterr().err

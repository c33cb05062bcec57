"""Retroactive matches in AIL: earlier screenshots and images are tagged and correlated when a
picture added to quaid later matches them.

The plan (:func:`ail_connector.retro.plan_retro`) on its own, then the QuaidImages module loaded
into the AIL stand-in (``ail_host``, AIL's rules for tags, queues and shown correlations) against a
real ``quaid serve`` process, with a reference added through quaid's API.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from ail_host import ail_with_module
from ail_standin import page, png, reencoded, sha, start_service

from ail_connector import AILRef, Policy
from ail_connector.retro import plan_retro
from ail_connector.tags import POSSIBLY_SIMILAR, REVIEW, SIMILAR
from quaid_client import BadAnswer, QuaidClient

CE = 'dark-web:topic="pornography-child-exploitation"'


# --- the plan --------------------------------------------------------------------------------

def event(new: str, *matches: tuple[str, str]) -> dict:
    found = [{"id": i, "decision": d, "distance": 0.1} for i, d in matches]
    return {"event": "1-0", "id": new, "matches": found}


SHOT, IMAGE, NEW, FOREIGN, UNSAFE = (sha(bytes([n])) for n in range(5))
KNOWN = {SHOT: AILRef("screenshot", SHOT), IMAGE: AILRef("image", IMAGE), NEW: AILRef("screenshot", NEW),
         UNSAFE: AILRef("image", UNSAFE)}


def plans(evt: dict, policy: Policy = Policy()) -> dict:
    found = plan_retro(evt, policy, KNOWN.get, lambda ref: ref.id != UNSAFE)
    return {plan.subject.id: plan for plan in found}


def test_each_earlier_ail_object_gets_its_decisions_tags_and_a_link_to_the_new_one():
    found = plans(event(NEW, (SHOT, "accepted"), (IMAGE, "to-review"), (FOREIGN, "accepted")))
    assert set(found) == {SHOT, IMAGE}  # a picture that is not an AIL object is nobody's to tag
    assert found[SHOT].tags == (SIMILAR,) and found[IMAGE].tags == (POSSIBLY_SIMILAR, REVIEW)
    [link] = found[SHOT].correlations
    assert (link.source, link.target) == (KNOWN[SHOT], KNOWN[NEW])
    assert found[IMAGE].correlations == ()  # to-review: not correlated by default
    assert plans(event(NEW, (IMAGE, "to-review")), Policy(correlate_to_review=True))[IMAGE].correlations


def test_a_new_picture_outside_ail_tags_without_links():
    found = plans(event(FOREIGN, (SHOT, "accepted")))
    assert found[SHOT].tags == (SIMILAR,) and found[SHOT].correlations == ()


def test_nothing_is_spread_around_unsafe_content():
    assert set(plans(event(NEW, (UNSAFE, "accepted"), (SHOT, "accepted")))) == {SHOT}
    assert plans(event(UNSAFE, (SHOT, "accepted"))) == {}  # the new picture itself is unsafe


def test_rejected_and_self_matches_plan_nothing():
    assert plans(event(NEW, (SHOT, "rejected"), (NEW, "accepted"))) == {}


def test_a_malformed_event_is_a_bad_answer():
    with pytest.raises(BadAnswer):
        plan_retro({"id": NEW, "matches": [{"id": 3}]}, Policy(), KNOWN.get, lambda ref: True)


# --- the module in the AIL stand-in, against a real service -----------------------------------

@pytest.fixture(scope="module")
def service():
    home = Path(tempfile.mkdtemp(prefix="quaid-ail-retro-"))
    proc = start_service(home)
    yield proc
    proc.stop()
    shutil.rmtree(home, ignore_errors=True)


def cfg(url: str, tmp_path: Path, extra: str = "") -> str:
    return (f"[Quaid]\nurl = {url}\nsweep_interval = 0\nsweep_settle = 0\n"
            f"state_dir = {tmp_path / 'state'}\n{extra}")


def test_a_reference_added_later_tags_the_earlier_screenshot(tmp_path, service):
    with ail_with_module(tmp_path / "ail", cfg(service.url, tmp_path), subscribed=False) as ail:
        shot = ail.add_screenshot(png(page(801)))
        module = ail.module_class()
        module.run_rounds(1)  # the screenshot is swept: nothing to match yet
        assert ail.tags.get(f"screenshot::{shot}", set()) == set()
        with QuaidClient(service.url) as client:  # an analyst adds a reference, outside AIL
            assert client.add(reencoded(page(801)), name="kit-reference.png")["status"] == "added"
        module.run_rounds(1)
        assert ail.tags[f"screenshot::{shot}"] == {SIMILAR} and ail.unknown_tags() == set()
        assert ail.correlations == set()  # the reference is not an AIL object: nothing to link
        position = (tmp_path / "state" / "events.position").read_text()
        module.run_rounds(2)  # nothing new
        assert (tmp_path / "state" / "events.position").read_text() == position and ail.errors == []


def test_a_later_screenshot_tags_and_correlates_the_earlier_one_where_ail_shows_it(tmp_path, service):
    with ail_with_module(tmp_path / "ail", cfg(service.url, tmp_path)) as ail:
        ail.apply_correlation_patch()
        first = ail.add_image(png(page(811)))
        module = ail.module_class()
        module.run_rounds(1)
        ail.push("QuaidImages", f"image::{first}")
        module.run_rounds(1)
        second = ail.add_screenshot(reencoded(page(811)))
        module.run_rounds(2)  # swept, searched and tagged; then the event tags the earlier image
        tagged = ail.run_tags_module()
        assert f"screenshot::{second};{SIMILAR}" in tagged and f"image::{first};{SIMILAR}" in tagged
        assert ail.correlated(f"image::{first}", f"screenshot::{second}")


def test_an_earlier_unsafe_image_is_left_alone(tmp_path, service):
    with ail_with_module(tmp_path / "ail", cfg(service.url, tmp_path), subscribed=False) as ail:
        unsafe = ail.add_screenshot(png(page(821)))
        module = ail.module_class()
        module.run_rounds(1)  # indexed while its tags were still safe
        ail.tags[f"screenshot::{unsafe}"] = {CE}  # tagged by an analyst since
        with QuaidClient(service.url) as client:
            client.add(reencoded(page(821)), name="reference.png")
        module.run_rounds(1)
        assert ail.tags[f"screenshot::{unsafe}"] == {CE}


def test_following_can_be_switched_off(tmp_path, service):
    with ail_with_module(tmp_path / "ail", cfg(service.url, tmp_path, "follow_events = false\n"),
                         subscribed=False) as ail:
        shot = ail.add_screenshot(png(page(831)))
        module = ail.module_class()
        module.run_rounds(1)
        with QuaidClient(service.url) as client:
            client.add(reencoded(page(831)), name="reference.png")
        module.run_rounds(1)
        assert ail.tags.get(f"screenshot::{shot}", set()) == set()
        assert not (tmp_path / "state" / "events.position").exists()

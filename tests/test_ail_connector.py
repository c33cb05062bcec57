"""The AIL connector: AIL conventions, decision -> actions, the sweep, the library against a
real ``quaid serve`` process, and the AIL module file against a stand-in of AIL's module API.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import requests
from ail_standin import (
    ail_with_module,
    free_port,
    gif,
    page,
    png,
    reencoded,
    sha,
    start_service,
)

from ail_connector import AILRef, Correlator, Policy, QuaidService, ServiceError, plan_actions, skip_reason
from ail_connector.ail_objects import (
    PLACEHOLDER_SCREENSHOTS,
    id_from_rel_path,
    is_tags_safe,
    queue_message,
    rel_path,
)
from ail_connector.sweep import ScreenshotSweeper

SIMILAR = 'infoleak:automatic-detection="similar-picture"'
POSSIBLY = 'infoleak:automatic-detection="possibly-similar-picture"'
REVIEW = 'workflow:todo="review"'
CE = 'dark-web:topic="pornography-child-exploitation"'


@pytest.fixture(scope="module")
def service():
    home = Path(tempfile.mkdtemp(prefix="quaid-ail-test-"))
    proc = start_service(home)
    yield proc
    proc.stop()
    shutil.rmtree(home, ignore_errors=True)


def stored(service, picture_id: str) -> bool:
    return requests.get(f"{service.url}/api/v1/pictures/{picture_id}", timeout=10).status_code == 200


# --- AIL conventions ---------------------------------------------------------------------------

def test_rel_path_matches_ail_layout_and_round_trips():
    obj_id = sha(b"x")
    # Screenshot.get_rel_path: six 2-character folders, then the remaining 52 characters
    assert rel_path(obj_id) == "/".join([obj_id[0:2], obj_id[2:4], obj_id[4:6], obj_id[6:8], obj_id[8:10],
                                          obj_id[10:12], obj_id[12:]]) + ".png"
    assert rel_path(obj_id, "image") == rel_path(obj_id)[:-4]
    assert id_from_rel_path(rel_path(obj_id)) == obj_id
    assert id_from_rel_path(rel_path(obj_id, "image"), "image") == obj_id
    assert id_from_rel_path(rel_path(obj_id)[:-4]) is None  # screenshots end in .png
    assert id_from_rel_path("ab/cd/" + obj_id + ".png") is None
    with pytest.raises(ValueError):
        rel_path("../../etc/passwd")


def test_global_ids_and_queue_messages():
    ref = AILRef.parse("item::crawled/2024/01/02/a.onion/x:y")
    assert (ref.type, ref.subtype, ref.id) == ("item", "", "crawled/2024/01/02/a.onion/x:y")
    assert AILRef("screenshot", "ab").global_id == "screenshot::ab"
    assert queue_message(AILRef("image", "cd"), SIMILAR) == f"image::cd;{SIMILAR}"
    with pytest.raises(ValueError):
        AILRef.parse("screenshot")


def test_unsafe_tags_follow_ail():
    assert is_tags_safe(['infoleak:submission="crawler"'])
    assert not is_tags_safe([CE])
    assert not is_tags_safe(["copine-scale:level-3", "x"])
    assert not is_tags_safe(['dark-web:topic="violence"'])


def test_skip_reasons():
    data = png(page(1))
    shot = AILRef("screenshot", sha(data))
    assert skip_reason(shot, data) == ""
    assert skip_reason(AILRef("image", "a"), gif(page(1))) == "GIF"
    placeholder = AILRef("screenshot", next(iter(PLACEHOLDER_SCREENSHOTS)))
    assert skip_reason(placeholder, data) == "placeholder screenshot"
    assert skip_reason(shot, data, tags=[CE]) == "unsafe tags"
    assert skip_reason(shot, data, tags=[], tags_safe=False) == "unsafe tags"  # AIL's own answer wins
    assert skip_reason(shot, b"") == "empty file"
    assert skip_reason(AILRef("item", "x"), data).startswith("not a picture")


# --- decision -> actions -------------------------------------------------------------------------

A, B, C, D = (f"{i:x}" * 64 for i in range(10, 14))
SUBJECT = AILRef("screenshot", A)


def resolve(picture_id):
    return {B: AILRef("screenshot", B), C: AILRef("image", C)}.get(picture_id)


def answer(*matches):
    return {"decision": matches[0][1] if matches else "rejected",
            "matches": [{"id": i, "decision": d, "distance": dist} for i, d, dist in matches]}


def test_accepted_match_tags_and_correlates():
    plan = plan_actions(SUBJECT, answer((B, "accepted", 0.01), (C, "to-review", 0.2)), Policy(), resolve,
                        lambda ref: True)
    assert plan.decision == "accepted"
    assert plan.tags == (SIMILAR,)
    assert [(c.target, c.decision) for c in plan.correlations] == [(AILRef("screenshot", B), "accepted")]


def test_to_review_correlates_only_when_configured():
    ans = answer((C, "to-review", 0.2))
    plan = plan_actions(SUBJECT, ans, Policy(), resolve, lambda ref: True)
    assert plan.decision == "to-review"
    assert set(plan.tags) == {POSSIBLY, REVIEW}
    assert plan.correlations == ()
    plan = plan_actions(SUBJECT, ans, Policy.from_mapping({"correlate_to_review": "true"}), resolve,
                        lambda ref: True)
    assert [c.target for c in plan.correlations] == [AILRef("image", C)]


def test_unsafe_self_foreign_and_rejected_matches():
    ans = answer((A, "accepted", 0.0), (B, "accepted", 0.0), (D, "to-review", 0.2), (C, "rejected", 0.9))
    plan = plan_actions(SUBJECT, ans, Policy(), resolve, lambda ref: ref.id != B)
    assert plan.correlations == ()
    assert dict(plan.skipped) == {B: "unsafe tags", D: "not an AIL object"}
    assert plan.decision == "to-review"  # the non-AIL picture still counts for the tag
    assert plan_actions(SUBJECT, answer((C, "rejected", 0.9)), Policy(), resolve, lambda r: True).tags == ()


def test_correlation_limit_and_policy_parsing():
    many = {f"{i:064x}": AILRef("screenshot", f"{i:064x}") for i in range(5)}
    ans = answer(*[(i, "accepted", 0.0) for i in many])
    policy = Policy.from_mapping({"max_correlations": "2"})
    plan = plan_actions(SUBJECT, ans, policy, many.get, lambda r: True)
    assert len(plan.correlations) == 2
    assert [reason for _, reason in plan.skipped] == ["correlation limit"] * 3
    policy = Policy.from_mapping({"accepted_tags": 'a:b="c, d" | e:f', "top": "3"})
    assert policy.accepted_tags == ('a:b="c, d"', "e:f") and policy.top == 3
    with pytest.raises(ValueError):
        Policy.from_mapping({"top": "0"})


# --- sweep ---------------------------------------------------------------------------------------

def _write_screenshot(folder: Path, data: bytes, mtime: float) -> str:
    path = folder / rel_path(sha(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return sha(data)


def test_sweep_yields_new_screenshots_once_oldest_first_and_resumes(tmp_path):
    folder, state = tmp_path / "screenshot", tmp_path / "state" / "sweep.json"
    now = time.time()
    ids = [_write_screenshot(folder, f"shot{i}".encode(), now - 100 + i) for i in range(5)]
    young = _write_screenshot(folder, b"being written", now + 60)
    (folder / "ab").mkdir(exist_ok=True)
    (folder / "ab" / "notes.txt").write_text("not in AIL's layout")
    sweeper = ScreenshotSweeper(folder, state, interval=0, settle=5)
    first = list(sweeper.batch(3))
    assert [p.id for p in first] == ids[:3]
    for p in first[:2]:
        sweeper.done(p)
    # a new process resumes after the last handled file; the unhandled third comes again
    sweeper = ScreenshotSweeper(folder, state, interval=0, settle=5)
    again = [p.id for p in sweeper.batch(10)]
    assert again == ids[2:]
    assert young not in again
    pending = list(sweeper.batch(10))  # taken but not done: the next walk offers them again
    assert [p.id for p in pending] == ids[2:]
    for p in pending:
        sweeper.done(p)
    assert list(ScreenshotSweeper(folder, state, interval=0, settle=5).batch(10)) == []


def test_sweep_without_backfill_ignores_existing_and_respects_interval(tmp_path):
    folder = tmp_path / "screenshot"
    _write_screenshot(folder, b"old", time.time() - 1000)
    sweeper = ScreenshotSweeper(folder, tmp_path / "s.json", interval=3600, settle=0, backfill=False)
    assert list(sweeper.batch()) == []
    time.sleep(0.05)
    _write_screenshot(folder, b"new", time.time())
    assert not sweeper.due()  # walked a moment ago: the next walk waits for the interval
    assert list(sweeper.batch()) == []
    sweeper.interval = 0
    assert [p.id for p in sweeper.batch()] == [sha(b"new")]


# --- the library against a real quaid service ---------------------------------------------------

def test_correlator_against_real_service(service):
    client = QuaidService(service.url)
    known = png(page(101))
    known_ref = AILRef("screenshot", sha(known))
    refs = {known_ref.id: known_ref}
    correlator = Correlator(client, Policy(), refs.get, lambda ref: True)

    first = correlator.process(known_ref, known)
    assert first.status == "processed" and first.added == "added"
    assert first.plan.decision == "rejected" and first.plan.tags == ()  # never matches itself
    assert stored(service, known_ref.id)

    copy = reencoded(page(101))
    copy_ref = AILRef("image", sha(copy))
    refs[copy_ref.id] = copy_ref
    outcome = correlator.process(copy_ref, copy)
    assert outcome.plan.decision == "accepted"
    assert outcome.plan.tags == (SIMILAR,)
    assert [c.target for c in outcome.plan.correlations] == [known_ref]

    other = png(page(202))
    other_ref = AILRef("screenshot", sha(other))
    outcome = correlator.process(other_ref, other)
    assert known_ref not in [c.target for c in outcome.plan.correlations]
    assert outcome.plan.tags == () or outcome.plan.decision != "accepted"

    again = correlator.process(copy_ref, copy)  # idempotent: the service says duplicate
    assert again.added == "duplicate"
    assert [c.target for c in again.plan.correlations] == [known_ref]


def test_skipped_objects_never_reach_the_service(service):
    correlator = Correlator(QuaidService(service.url), Policy(), lambda i: None, lambda r: True)
    animated = gif(page(303))
    assert correlator.process(AILRef("image", sha(animated)), animated).reason == "GIF"
    unsafe = png(page(304))
    assert correlator.process(AILRef("screenshot", sha(unsafe)), unsafe, tags=[CE]).reason == "unsafe tags"
    assert not stored(service, sha(animated)) and not stored(service, sha(unsafe))


def test_service_errors_are_clear(service):
    with pytest.raises(ServiceError) as err:
        QuaidService(service.url).add(b"not a picture at all")
    assert err.value.status == 415
    dead = QuaidService(f"http://127.0.0.1:{free_port()}", timeout=(0.5, 1.0))
    with pytest.raises(ServiceError) as err:
        dead.search(png(page(1)))
    assert err.value.status is None and "unreachable" in str(err.value)


# --- the AIL module, on a stand-in of AIL's module API ------------------------------------------

@pytest.fixture
def ail(tmp_path, service):
    core_cfg = (f"[Quaid]\nurl = {service.url}\nsweep_interval = 0\nsweep_settle = 0\n"
                f"sweep_state = {tmp_path / 'sweep.json'}\n")
    with ail_with_module(tmp_path / "ail", core_cfg) as world:
        yield world


def test_module_tags_and_correlates_images_from_the_images_queue(ail):
    shot = ail.add_screenshot(png(page(401)))
    copy = ail.add_image(reencoded(page(401)))
    module = ail.module_class()
    assert module.module_name == "QuaidImages"
    module.run_rounds(1)  # idle: the sweep indexes the existing screenshot
    ail.push("QuaidImages", f"image::{copy}", "")
    module.run_rounds(1)
    tag_lines = ail.run_tags_module()
    assert tag_lines == [f"image::{copy};{SIMILAR}"]  # <global id>;<tag>, on the Tags queue
    assert ail.tags[f"image::{copy}"] == {SIMILAR}
    assert ail.correlated(f"image::{copy}", f"screenshot::{shot}")


def test_module_skips_gifs_placeholders_and_unsafe_objects(ail, service):
    animated = ail.add_image(gif(page(402)))
    unsafe = ail.add_image(png(page(403)), tags=(CE,))
    module = ail.module_class()
    for obj_id in (animated, unsafe):
        ail.push("QuaidImages", f"image::{obj_id}")
    module.run_rounds(2)
    assert ail.queues.get("Tags", []) == [] and ail.correlations == set()
    assert not stored(service, animated) and not stored(service, unsafe)


def test_module_sweeps_new_crawler_screenshots_once(ail, service):
    first = ail.add_screenshot(png(page(501)))
    module = ail.module_class()
    module.run_rounds(1)
    assert stored(service, first)
    second = ail.add_screenshot(reencoded(page(501)))
    module.run_rounds(1)
    assert ail.correlated(f"screenshot::{second}", f"screenshot::{first}")
    assert ail.run_tags_module() == [f"screenshot::{second};{SIMILAR}"]
    restarted = ail.module_class()  # state kept on disk: nothing is sent twice
    restarted.run_rounds(2)
    assert ail.queues.get("Tags", []) == []


def test_module_backs_off_and_requeues_when_the_service_is_down(ail):
    ail.core_cfg = f"[Quaid]\nurl = http://127.0.0.1:{free_port()}\nsweep_screenshots = false\ntimeout = 1\n"
    obj_id = ail.add_image(png(page(601)))
    module = ail.module_class()
    ail.push("QuaidImages", f"image::{obj_id}", "from-feeder")
    module.run_rounds(1)
    assert ail.sent_back == [f"image::{obj_id};from-feeder"]  # message kept for a later try
    assert ail.queues["QuaidImages"] == [f"image::{obj_id};from-feeder"]
    assert not module.can_process_next_message()
    module.run_rounds(3)  # paused: the message is not taken again at once
    assert ail.queues["QuaidImages"] == [f"image::{obj_id};from-feeder"]

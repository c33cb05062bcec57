"""The AIL connector library: AIL conventions, decision -> actions, the sweep and its state
file, and the library with its client (``quaid_client``) against a real ``quaid serve`` process.
The AIL module itself is tested in ``test_ail_module.py``; the client's statuses, retries and
deadline against a scripted server in ``test_client.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import requests
from ail_standin import free_port, gif, page, png, reencoded, sha, start_service

from ail_connector import AILRef, Correlator, Policy, plan_actions, skip_reason
from ail_connector.ail_objects import (
    PLACEHOLDER_SCREENSHOTS,
    id_from_rel_path,
    is_tags_safe,
    queue_message,
    rel_path,
)
from ail_connector.config import read_policy
from ail_connector.sweep import FolderSweeper, SweepStateError
from ail_connector.tags import POSSIBLY_SIMILAR as POSSIBLY
from ail_connector.tags import REVIEW, SIMILAR
from quaid_client import AuthError, QuaidClient, RequestRefused, ServiceUnavailable

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
    plan = plan_actions(SUBJECT, ans, read_policy({"correlate_to_review": "true"}), resolve,
                        lambda ref: True)
    assert [c.target for c in plan.correlations] == [AILRef("image", C)]


def test_unsafe_self_foreign_and_rejected_matches():
    ans = answer((A, "accepted", 0.0), (B, "accepted", 0.0), (D, "to-review", 0.2), (C, "rejected", 0.9))
    plan = plan_actions(SUBJECT, ans, Policy(), resolve, lambda ref: ref.id != B)
    assert plan.correlations == ()
    assert dict(plan.skipped) == {B: "unsafe tags", D: "not an AIL object"}
    assert plan.decision == "to-review"  # the non-AIL picture still counts for the tag
    assert plan_actions(SUBJECT, answer((C, "rejected", 0.9)), Policy(), resolve, lambda r: True).tags == ()


def test_a_phishing_suspected_match_adds_the_phishing_tag_unless_it_is_unsafe():
    brand = {"name": "Acme", "domains": ["acme.example"]}
    phish = answer((B, "accepted", 0.01))
    phish["matches"][0].update(brand=brand, verdict="phishing-suspected")
    plan = plan_actions(SUBJECT, phish, Policy(), resolve, lambda ref: True)
    assert plan.tags == (SIMILAR, 'phishing:techniques="fake-website"') and plan.brand == "Acme"
    assert plan_actions(SUBJECT, phish, Policy(), resolve, lambda ref: False).tags == ()
    legit = answer((B, "accepted", 0.01))
    legit["matches"][0].update(brand=brand, verdict="legitimate")
    assert plan_actions(SUBJECT, legit, Policy(), resolve, lambda ref: True).tags == (SIMILAR,)
    policy = read_policy({"phishing_tags": 'phishing:state="active"'})
    configured = plan_actions(SUBJECT, phish, policy, resolve, lambda ref: True)
    assert configured.tags[-1] == 'phishing:state="active"'


def test_correlation_limit_and_policy_parsing():
    many = {f"{i:064x}": AILRef("screenshot", f"{i:064x}") for i in range(5)}
    ans = answer(*[(i, "accepted", 0.0) for i in many])
    policy = read_policy({"max_correlations": "2"})
    plan = plan_actions(SUBJECT, ans, policy, many.get, lambda r: True)
    assert len(plan.correlations) == 2
    assert [reason for _, reason in plan.skipped] == ["correlation limit"] * 3
    policy = read_policy({"accepted_tags": 'a:b="c, d" | e:f', "top": "3"})
    assert policy.accepted_tags == ('a:b="c, d"', "e:f") and policy.top == 3
    with pytest.raises(ValueError, match=r"\[Quaid\] top = '0': must be at least 1"):
        read_policy({"top": "0"})


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
    sweeper = FolderSweeper(folder, state, interval=0, settle=5)
    first = list(sweeper.batch(3))
    assert [p.id for p in first] == ids[:3]
    for p in first[:2]:
        sweeper.done(p)
    # a new process resumes after the last handled file; the unhandled third comes again
    sweeper = FolderSweeper(folder, state, interval=0, settle=5)
    again = [p.id for p in sweeper.batch(10)]
    assert again == ids[2:]
    assert young not in again
    pending = list(sweeper.batch(10))  # taken but not done: the next walk offers them again
    assert [p.id for p in pending] == ids[2:]
    for p in pending:
        sweeper.done(p)
    assert list(FolderSweeper(folder, state, interval=0, settle=5).batch(10)) == []


def test_sweep_without_backfill_ignores_existing_and_respects_interval(tmp_path):
    folder = tmp_path / "screenshot"
    _write_screenshot(folder, b"old", time.time() - 1000)
    sweeper = FolderSweeper(folder, tmp_path / "s.json", interval=3600, settle=0, backfill=False)
    assert list(sweeper.batch()) == []
    time.sleep(0.05)
    _write_screenshot(folder, b"new", time.time())
    assert not sweeper.due()  # walked a moment ago: the next walk waits for the interval
    assert list(sweeper.batch()) == []
    sweeper.interval = 0
    assert [p.id for p in sweeper.batch()] == [sha(b"new")]


# --- the library against a real quaid service ---------------------------------------------------

def test_correlator_against_real_service(service):
    client = QuaidClient(service.url)
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
    correlator = Correlator(QuaidClient(service.url), Policy(), lambda i: None, lambda r: True)
    animated = gif(page(303))
    assert correlator.process(AILRef("image", sha(animated)), animated).reason == "GIF"
    unsafe = png(page(304))
    assert correlator.process(AILRef("screenshot", sha(unsafe)), unsafe, tags=[CE]).reason == "unsafe tags"
    assert not stored(service, sha(animated)) and not stored(service, sha(unsafe))


def test_service_errors_are_clear(service):
    with pytest.raises(RequestRefused) as err:
        QuaidClient(service.url).add(b"not a picture at all")
    assert err.value.status == 415 and not err.value.transient
    dead = QuaidClient(f"http://127.0.0.1:{free_port()}", timeout=(0.5, 1.0), retries=0)
    with pytest.raises(ServiceUnavailable) as err:
        dead.search(png(page(1)))
    assert err.value.status is None and "unreachable" in str(err.value) and err.value.transient


def test_the_client_covers_the_api_against_the_real_service(service):
    client = QuaidClient(service.url)
    data, copy = png(page(1101)), reencoded(page(1101))
    added = client.add(data, name="image::x", tags=["ail:image"], metadata={"ail_global_id": "image::x"})
    pid = added["id"]
    assert pid == sha(data) and client.get(pid)["name"] == "image::x"
    assert client.update(pid, tags=["ail:image", "seen"])["tags"] == ["ail:image", "seen"]
    data_kept, content_type = client.image(pid)
    assert data_kept[:3] == b"\xff\xd8\xff" and content_type == "image/jpeg"  # the stored thumbnail
    found = client.search(copy, top=3, include_rejected=True)
    assert found["matches"][0]["id"] == pid
    state = client.wait(client.submit([("copy.png", copy), ("other.png", png(page(1102)))]), timeout=120)
    assert state["status"] == "done" and len(state["results"]) == 2
    cluster = next(c for c in client.clusters() if c["representative"] in (pid, sha(copy)))
    assert pid in json.dumps(client.cluster(cluster["cluster"]))
    assert set(client.export()) >= {"pictures", "clusters"}
    assert isinstance(client.reviews()["items"], list) and isinstance(client.labels(), list)
    assert client.status()["status"] == "ready"
    assert client.delete(pid)["status"] == "deleted"
    with pytest.raises(RequestRefused) as gone:
        client.get(pid)
    assert gone.value.status == 404


def test_a_wrong_api_key_is_an_auth_error_from_the_real_service():
    home = Path(tempfile.mkdtemp(prefix="quaid-ail-keyed-"))
    keyed = start_service(home, env={"QUAID_WRITE_KEYS": "the-right-key"})
    try:
        for key in (None, "a-wrong-key"):
            with pytest.raises(AuthError) as err:
                QuaidClient(keyed.url, api_key=key).add(png(page(7)))
            assert err.value.status == 401 and not err.value.transient
        assert QuaidClient(keyed.url, api_key="the-right-key").add(png(page(7)))["status"] == "added"
    finally:
        keyed.stop()
        shutil.rmtree(home, ignore_errors=True)


# --- the sweep's state file -------------------------------------------------------------------------

def test_sweep_state_is_read_on_the_first_sweep_and_unreadable_state_is_an_error(tmp_path):
    folder, state = tmp_path / "screenshot", tmp_path / "state" / "sweep.json"
    shot = _write_screenshot(folder, b"one", time.time() - 100)
    state.mkdir(parents=True)  # a folder where the state file should be: cannot be read
    sweeper = FolderSweeper(folder, state, interval=0, settle=0)  # starting does not read it
    with pytest.raises(SweepStateError, match="unreadable"):
        list(sweeper.batch())
    state.rmdir()
    assert [p.id for p in sweeper.batch()] == [shot]  # the same object goes on once it is readable


def test_damaged_sweep_state_is_moved_aside_and_the_sweep_starts_over(tmp_path):
    folder, state = tmp_path / "screenshot", tmp_path / "sweep.json"
    shots = [_write_screenshot(folder, f"s{i}".encode(), time.time() - 100 + i) for i in range(2)]
    state.write_text('{"mark_ns": ')
    sweeper = FolderSweeper(folder, state, interval=0, settle=0, backfill=False)
    assert [p.id for p in sweeper.batch()] == shots  # nothing lost: sending twice changes nothing
    assert (tmp_path / "sweep.json.damaged").read_text() == '{"mark_ns": '
    assert json.loads(state.read_text())["mark_ns"] == 0


def test_sweep_state_that_cannot_be_written_is_an_error_and_nothing_is_lost(tmp_path):
    folder, state_dir = tmp_path / "screenshot", tmp_path / "QUAID"
    shot = _write_screenshot(folder, b"one", time.time() - 100)
    sweeper = FolderSweeper(folder, state_dir / "sweep.json", interval=0, settle=0)
    picture = next(sweeper.batch())
    shutil.rmtree(state_dir)
    state_dir.write_text("a file where the state folder should be")
    with pytest.raises(SweepStateError, match="cannot be written: FileExistsError"):
        sweeper.done(picture)
    state_dir.unlink()
    state_dir.mkdir()
    (state_dir / "sweep.json.tmp").mkdir()  # the atomic write's temporary file cannot be made
    with pytest.raises(SweepStateError, match="cannot be written: IsADirectoryError"):
        sweeper.done(picture)
    (state_dir / "sweep.json.tmp").rmdir()
    def fresh() -> FolderSweeper:
        return FolderSweeper(folder, state_dir / "sweep.json", interval=0, settle=0)

    assert [p.id for p in fresh().batch()] == [shot]  # not marked done
    sweeper.done(picture)
    assert list(fresh().batch()) == []

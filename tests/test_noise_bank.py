"""The noise bank end to end: marking (facade, API, CLI, review verdict), answering, persistence.

A noise picture stays stored but is never reported as a match; a query whose best match is one,
or that the low-information detector flags, is answered with ``"noise": {"reason", "picture"}``
beside an unchanged ``decision`` (engine.noise).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from drawing import drawn, variant
from PIL import Image

from engine.cli import main
from engine.review import ReviewQueue, judge_and_mark
from engine.service.app import create_app
from engine.store import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
HEADER = {"X-Quaid-Request": "1"}


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def blank(colour: str = "white", size: tuple[int, int] = (1280, 800)) -> bytes:
    return png(Image.new("RGB", size, colour))


# --- the facade -------------------------------------------------------------------------

def test_a_marked_picture_is_never_a_match_and_its_copies_are_answered_as_noise(quaid):
    page, other = quaid.add(drawn(1), name="page"), quaid.add(drawn(2), name="other")
    before = quaid.search(variant(drawn(1)))
    assert before.decision.value == "accepted" and before.noise is None

    record = quaid.noise.mark(page.id)
    assert record.noise["reason"] == "marked" and record.noise["picture"] is None

    found = quaid.search(variant(drawn(1)), include_rejected=True).to_json()
    assert found["noise"] == {"reason": "matches-noise", "picture": page.id}
    assert page.id not in [m["id"] for m in found["matches"]]
    assert found["decision"] == "rejected"  # its only match was the noise picture
    assert quaid.search(drawn(2)).noise is None  # other pictures answer as before
    assert other.id in [m.id for m in quaid.search(drawn(2)).matches]

    assert quaid.noise.unmark(page.id).noise is None
    again = quaid.search(variant(drawn(1)))
    assert again.noise is None and again.matches[0].id == page.id


def test_a_low_information_picture_is_stored_as_noise_with_its_reason_and_can_be_unmarked(quaid):
    added = quaid.add(blank(), name="blank capture")
    assert added.noise is not None and added.noise.reason == "low-information"
    assert added.noise.measures["pdq_quality"] < 15
    stored = quaid.get(added.id).to_json()
    assert stored["noise"]["reason"] == "low-information" and stored["noise"]["at"] > 0
    assert quaid.stats()["noise"] == 1
    assert [p["id"] for p in quaid.noise.list()["pictures"]] == [added.id]

    # another blank capture: its best match is the stored blank page, so it names that picture
    other = quaid.search(blank("#fdfdfd", (1366, 768)), include_rejected=True).to_json()
    assert other["noise"]["reason"] == "matches-noise" and other["noise"]["picture"] == added.id
    assert other["matches"] == []

    quaid.noise.unmark(added.id)
    assert quaid.get(added.id).noise is None and quaid.stats()["noise"] == 0
    # unmarked, it is a match again; the query itself is still flagged by the detector
    found = quaid.search(blank())
    assert found.matches[0].id == added.id
    assert found.noise is not None and found.noise.reason == "low-information"


def test_the_detector_can_be_switched_off(quaid):
    quaid.settings = replace(quaid.settings, noise_detector=False)
    added = quaid.add(blank())
    assert added.noise is None and quaid.search(blank()).noise is None


def test_an_informative_picture_is_not_flagged_and_joins_no_noise_cluster(quaid):
    noise = quaid.add(blank())
    assert noise.noise is not None
    page = quaid.add(drawn(5))
    assert page.noise is None and page.cluster != noise.cluster
    # a second blank capture is noise too and clusters with the first, not with real pictures
    second = quaid.add(blank("#fdfdfd", (1366, 768)))
    assert second.noise is not None and second.cluster == noise.cluster


def test_deleting_a_noise_picture_takes_it_out_of_the_bank(quaid):
    added = quaid.add(blank())
    quaid.delete(added.id)
    assert quaid.stats()["noise"] == 0 and quaid.noise.list()["pictures"] == []


def test_the_list_drops_index_entries_whose_picture_is_gone(quaid):
    from engine.store import keys

    kept = quaid.add(drawn(8)).id
    quaid.noise.mark(kept)
    quaid.redis.zadd(keys.NOISE, {"e" * 64: 1.0})  # left by a process that died between its two writes
    assert quaid.noise.count() == 2
    assert [p["id"] for p in quaid.noise.list()["pictures"]] == [kept]
    assert quaid.noise.count() == 1


def test_a_duplicate_add_reports_the_stored_mark(quaid):
    first = quaid.add(drawn(7))
    quaid.noise.mark(first.id)
    again = quaid.add(drawn(7))
    assert again.status == "duplicate" and again.noise.reason == "marked"


def test_a_search_by_hashes_never_reports_a_noise_picture(quaid):
    from engine.exchange import hash_record

    page = quaid.add(drawn(11))
    quaid.noise.mark(page.id)
    hashes = hash_record(drawn(11), "page.png")["hashes"]
    found = quaid.search_hashes({"pdq": hashes["pdq"]}, include_rejected=True)
    assert found["noise"] == {"reason": "matches-noise", "picture": page.id}
    assert page.id not in [m["id"] for m in found["matches"]]


# --- review verdict ---------------------------------------------------------------------

def test_a_review_verdict_noise_marks_the_stored_pictures_and_is_no_calibration_label(quaid):
    page = quaid.add(drawn(21))
    queue = ReviewQueue(quaid.redis)
    match = {"id": page.id, "name": "p", "decision": "to-review", "distance": 0.3, "algorithms": {}}
    (item,) = queue.record(drawn(22), "query.png", {"decision": "to-review", "matches": [match]})

    judged = judge_and_mark(quaid, queue, item, "noise")
    assert judged["verdict"] == "noise"
    assert quaid.get(page.id).noise["reason"] == "review"
    assert queue.labels() == []  # noise says nothing about same or different


def test_the_review_api_takes_a_noise_verdict(quaid):
    client = create_app(replace(quaid.settings), quaid=quaid).test_client()
    page = quaid.add(drawn(31))
    queue = ReviewQueue(quaid.redis)
    match = {"id": page.id, "name": "p", "decision": "to-review", "distance": 0.3, "algorithms": {}}
    (item,) = queue.record(drawn(32), "query.png", {"decision": "to-review", "matches": [match]})
    answer = client.post(f"/api/v1/review/{item}", json={"verdict": "noise"})
    assert answer.status_code == 200 and answer.get_json()["verdict"] == "noise"
    assert client.get(f"/api/v1/pictures/{page.id}").get_json()["noise"]["reason"] == "review"
    assert client.post(f"/api/v1/review/{item}", json={"verdict": "junk"}).status_code == 400


# --- the API ----------------------------------------------------------------------------

def test_the_api_marks_unmarks_lists_and_counts_noise(quaid):
    client = create_app(replace(quaid.settings), quaid=quaid).test_client()
    pid = quaid.add(drawn(41)).id
    marked = client.post(f"/api/v1/pictures/{pid}/noise", headers=HEADER)
    assert marked.status_code == 200 and marked.get_json()["noise"]["reason"] == "marked"
    assert client.get("/status").get_json()["stats"]["noise"] == 1
    listed = client.get("/api/v1/noise").get_json()
    assert listed["total"] == 1 and [p["id"] for p in listed["pictures"]] == [pid]

    searched = client.post("/api/v1/search", data={"file": (io.BytesIO(drawn(41)), "q.png")},
                           headers=HEADER).get_json()
    assert searched["noise"] == {"reason": "matches-noise", "picture": pid}
    assert searched["matches"] == []
    other = quaid.add(drawn(43)).id
    assert client.get(f"/api/v1/pictures/{other}/matches").get_json()["matches"] == []

    unmarked = client.delete(f"/api/v1/pictures/{pid}/noise", headers=HEADER)
    assert unmarked.status_code == 200 and "noise" not in unmarked.get_json()
    assert client.get("/api/v1/noise").get_json()["total"] == 0


def test_a_copy_added_while_its_original_is_noise_is_stored_as_noise_naming_it(quaid):
    client = create_app(replace(quaid.settings), quaid=quaid).test_client()
    pid = quaid.add(drawn(44)).id
    client.post(f"/api/v1/pictures/{pid}/noise", headers=HEADER)
    copy = client.post("/api/v1/pictures", data={"file": (io.BytesIO(variant(drawn(44))), "copy.jpg")},
                       headers=HEADER).get_json()
    assert copy["noise"]["reason"] == "matches-noise" and copy["noise"]["picture"] == pid
    assert client.get(f"/api/v1/pictures/{pid}/matches").get_json()["matches"] == []  # the copy is noise
    assert client.get("/api/v1/noise").get_json()["total"] == 2


def test_the_api_refuses_bad_noise_requests_with_json_errors(quaid):
    client = create_app(replace(quaid.settings), quaid=quaid).test_client()
    pid = quaid.add(drawn(42)).id
    for method, path, headers, status in (
            ("post", f"/api/v1/pictures/{'f' * 64}/noise", HEADER, 404),
            ("delete", f"/api/v1/pictures/{'f' * 64}/noise", HEADER, 404),
            ("post", "/api/v1/pictures/not-an-id/noise", HEADER, 400),
            ("post", f"/api/v1/pictures/{pid}/noise", {}, 403),  # a change without the header
            ("get", "/api/v1/noise?limit=0", {}, 400),
            ("get", "/api/v1/noise?offset=x", {}, 400)):
        answer = getattr(client, method)(path, headers=headers)
        assert answer.status_code == status and isinstance(answer.get_json()["error"], str), path
    assert quaid.get(pid).noise is None


# --- the CLI ----------------------------------------------------------------------------

def test_the_cli_marks_by_prefix_and_fails_alone_on_an_unknown_id(local_store, capsys):
    from engine.core import Quaid

    with Quaid.open() as quaid:
        pid = quaid.add(drawn(51)).id
    assert main(["noise", "add", pid[:10], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["noise"]["reason"] == "marked"

    assert main(["noise", "add", "ffff" + pid[4:12], pid]) == 1  # one unknown id: exit 1, the other done
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "quaid noise add" in captured.err
    assert pid in captured.out

    assert main(["noise", "list", "--json"]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [pid]
    assert main(["noise", "remove", pid]) == 0
    assert "not noise" in capsys.readouterr().out
    assert main(["noise", "list", "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err


def test_a_mark_survives_a_restart_of_the_store(tmp_path):
    home = tmp_path / "home"
    picture = tmp_path / "page.png"
    picture.write_bytes(drawn(61))

    def quaid(*args: str) -> subprocess.CompletedProcess:
        env = {"QUAID_HOME": str(home), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
        return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=120)

    try:
        pid = json.loads(quaid("add", "--json", str(picture)).stdout)["id"]
        assert quaid("noise", "add", pid).returncode == 0
        EmbeddedRedis(home / "redis").stop()  # the store stops; the next command starts it again
        listed = quaid("noise", "list", "--json")
        assert listed.returncode == 0 and json.loads(listed.stdout)["noise"]["reason"] == "marked"
        assert json.loads(quaid("stats", "--json").stdout)["noise"] == 1
        found = json.loads(quaid("search", "--json", str(picture)).stdout)
        assert found["noise"]["picture"] == pid and found["matches"] == []
    finally:
        EmbeddedRedis(home / "redis").stop()


def test_the_cli_says_when_an_added_or_searched_picture_is_noise(local_store, tmp_path, capsys):
    capture = tmp_path / "blank.png"
    capture.write_bytes(blank())
    assert main(["add", str(capture)]) == 0
    added = capsys.readouterr().out
    assert "[noise: low-information]" in added
    pid = added.split()[1]
    assert main(["search", str(capture)]) == 0
    assert f"[noise: matches-noise {pid[:16]}]" in capsys.readouterr().out

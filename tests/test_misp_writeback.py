"""The MISP write-back (``quaid misp-sync``) against a real quaid service and a MISP stand-in.

A MISP instance cannot run here; :mod:`misp_standin` answers the REST calls PyMISP makes with
MISP-shaped bodies (and refuses what MISP refuses: cross-event references, bad keys), and
records every write so the tests assert on what reached "MISP".
"""

from __future__ import annotations

import hashlib
import sys

import pytest
from drawing import drawn, variant
from misp_standin import MISPStandIn, running
from misp_support import ROOT, start_quaid, stop

from engine.cli import main as quaid

sys.path.insert(0, str(ROOT / "misp_modules" / "writeback"))
from quaid_misp_sync.cli import main as standalone  # noqa: E402

pytestmark = pytest.mark.misp

ACCEPTED_TAGS = {'workflow:state="complete"', 'misp:automation-level="unsupervised"'}


@pytest.fixture(scope="module")
def quaid_url(tmp_path_factory):
    home = tmp_path_factory.mktemp("quaid-home")
    process, url = start_quaid(home)
    yield url
    stop(process, home)


def build_misp(seed: int) -> tuple[MISPStandIn, dict]:
    """Four events: a bare screenshot, its re-encoded copy in an image object, an unrelated
    picture with a PDF, and an event outside the date range. Each test draws its own
    pictures (``seed``), as quaid keeps the pictures of earlier tests."""
    misp = MISPStandIn()
    e1 = misp.add_event("phishing kit A", date="2026-11-20", tags=("kit",))
    a1 = misp.add_attachment(e1, "screenshot.png", drawn(seed))
    e2 = misp.add_event("phishing kit B", date="2026-11-21")
    image = misp.add_image_object(e2)
    a2 = misp.add_attachment(e2, "login.jpg", variant(drawn(seed)), obj=image)
    a2["object_relation"] = "attachment"
    e3 = misp.add_event("unrelated", date="2026-11-21")
    a3 = misp.add_attachment(e3, "other.png", drawn(seed + 1))
    misp.add_attachment(e3, "report.pdf", b"%PDF-1.4 a report")
    e4 = misp.add_event("old", date="2025-01-01")
    return misp, {"e1": e1, "a1": a1, "e2": e2, "image": image, "a2": a2, "e3": e3, "a3": a3, "e4": e4}


def sync(url: str, quaid_url: str, *options: str, key: str = "misp-test-key") -> int:
    """``quaid misp-sync ...`` (the write-back mounted in quaid's command line)."""
    return quaid(["misp-sync", "--url", url, "--key", key, "--quaid", quaid_url, *options])


def tags(attribute: dict) -> set[str]:
    return {t["name"] for t in attribute["Tag"]}


def test_matches_are_recorded_once(quaid_url, capsys):
    misp, it = build_misp(21)
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01") == 0
        first = list(misp.writes)
        assert sync(url, quaid_url, "--since", "2026-11-01") == 0
    assert misp.writes == first, "a second run must write nothing"
    summary = capsys.readouterr().out
    assert "references already present: 2" in summary and "pictures duplicate: 3" in summary

    # event 1: tags on the bare attachment, an image object describing it, a stand-in for e2's picture
    assert tags(it["a1"]) == ACCEPTED_TAGS
    wrapper = next(o for o in it["e1"]["Object"] if "picture of attachment" in o["comment"])
    proxy = next(o for o in it["e1"]["Object"] if it["a2"]["uuid"] in o["comment"])
    assert len(it["e1"]["Object"]) == 2
    assert [(r["referenced_uuid"], r["relationship_type"]) for r in wrapper["ObjectReference"]] == [
        (it["a1"]["uuid"], "describes"),
        (proxy["uuid"], "similar"),
    ]
    variant_id = hashlib.sha256(variant(drawn(21))).hexdigest()
    link = next(a for a in proxy["Attribute"] if a["object_relation"] == "link")
    assert link["value"] == f"{quaid_url}/#/picture/{variant_id}"
    assert "accepted" in link["comment"] and "votes" in link["comment"]
    assert all(a["disable_correlation"] for a in proxy["Attribute"])
    assert it["e2"]["uuid"] in proxy["comment"]

    # event 2: the existing image object references a stand-in of e1's picture
    assert tags(it["a2"]) == ACCEPTED_TAGS
    [e2_proxy] = [o for o in it["e2"]["Object"] if o is not it["image"]]
    assert it["a1"]["uuid"] in e2_proxy["comment"]
    assert [(r["referenced_uuid"], r["relationship_type"]) for r in it["image"]["ObjectReference"]] == [
        (e2_proxy["uuid"], "similar")
    ]

    # event 3 (unrelated picture, a PDF) and event 4 (not selected): untouched
    assert it["e3"]["Object"] == [] and tags(it["a3"]) == set()
    assert it["e4"]["Object"] == []
    assert {kind for kind, _ in first} == {"tag", "object", "reference"}


def test_dry_run_writes_nothing(quaid_url, capsys):
    misp, it = build_misp(31)
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01") == 0  # pictures now known to quaid
    capsys.readouterr()
    fresh, _ = build_misp(31)  # same pictures, new events: quaid's metadata names the first ones
    with running(fresh) as url:
        assert sync(url, quaid_url, "--tag", "kit", "--dry-run") == 0
    out = capsys.readouterr().out
    assert fresh.writes == []
    assert "dry run" in out and "tags added: 2" in out
    # e1's picture: identical bytes in the first e1, its copy in the first e2 (both other events)
    assert "references added: 2" in out and "stand-in image objects created: 2" in out


def test_single_event_selection(quaid_url):
    misp, it = build_misp(41)
    with running(misp) as url:  # the library's own entry point (python -m quaid_misp_sync)
        assert (
            standalone(["--url", url, "--key", misp.key, "--quaid", quaid_url, "--event", it["e3"]["id"]])
            == 0
        )
    assert misp.writes == []  # e3's picture matches nothing in another event


def test_wrong_misp_key_stops_with_exit_code_2(quaid_url, capsys):
    misp, _ = build_misp(51)
    with running(misp) as url:
        assert sync(url, quaid_url, "--since", "2026-11-01", key="wrong") == 2
    assert "quaid misp-sync:" in capsys.readouterr().err
    assert misp.writes == []


def test_quaid_down_stops_with_exit_code_2(capsys):
    misp, _ = build_misp(61)
    with running(misp) as url:
        assert sync(url, "http://127.0.0.1:9", "--since", "2026-11-01") == 2
    assert "unreachable" in capsys.readouterr().err
    assert misp.writes == []


def test_a_selection_is_required(quaid_url, capsys):
    misp, _ = build_misp(71)
    with running(misp) as url:
        assert sync(url, quaid_url) == 2
    assert "select events" in capsys.readouterr().err

"""What ``quaid evaluate`` / ``quaid calibrate`` report beyond the shares: held out by site, the peers
side by side per kind (also at their best threshold within the false-accept budget), negatives
per kind, copies with a wrong accepted match, kinds reported apart, distractors, and the contact
sheet. End to end on a tiny generated set (two sites), the arithmetic on known inputs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from engine.cli import main
from engine.config import load_settings
from engine.evaluation import metrics, sources
from engine.evaluation.calibrate import calibrate
from engine.evaluation.contact import worst_cases
from engine.evaluation.dataset import Size, build_dataset
from engine.evaluation.evaluate import evaluate
from engine.evaluation.manifest import Entry, read_manifest
from engine.evaluation.metrics import Flags
from engine.evaluation.search_run import SearchRun, _score
from engine.evaluation.sites import SiteChoice, for_calibration, for_evaluation

SITES = tuple(s for s in sources.SITES if s.name in ("python", "git"))
HELD_OUT = "python"  # has unseen pages and a template sibling among its negatives


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval-sites")
    build_dataset(folder, Size(pages=3, page_negatives=2, photos=1, photo_negatives=1, siblings=1,
                               distractors=2), seed=7, progress=False, sites=SITES)
    return folder


@pytest.fixture(scope="module")
def held_out_report(two_sites, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval-report")
    settings = load_settings(home=str(tmp_path_factory.mktemp("home")))
    return evaluate(two_sites, settings, out, progress=False, sites=SiteChoice.parse(HELD_OUT, None)), out


# --- held out by site -------------------------------------------------------------------------


def test_evaluate_on_one_site_queries_only_it_and_keeps_every_picture_stored(two_sites, held_out_report):
    data, out = held_out_report
    entries = read_manifest(two_sites)
    assert data["dataset"]["sites"]["queries"] == [HELD_OUT]
    assert set(data["dataset"]["sites"]["stored"]) == {e.site for e in entries if e.role == "reference"}
    held = [e for e in entries if e.site == HELD_OUT]
    assert data["dataset"]["variants"] == sum(e.role == "variant" for e in held)
    assert data["dataset"]["negatives"] == sum(e.role == "negative" for e in held)
    stored = [e for e in entries if e.role in ("reference", "distractor")]
    assert data["dataset"]["references"] == len(stored)
    assert data["dataset"]["distractors"] == sum(e.role == "distractor" for e in entries) > 0
    assert f"Sites of the queries: {HELD_OUT}" in (out / "report.md").read_text()


def test_calibrate_on_some_sites_sees_none_of_the_others(two_sites):
    entries = read_manifest(two_sites)
    kept = for_calibration(entries, SiteChoice.parse(None, HELD_OUT))
    assert kept and all(e.site != HELD_OUT for e in kept)
    best, _tried, _thresholds, figures = calibrate(two_sites, load_settings(), progress=False,
                                                   sites=SiteChoice.parse(None, HELD_OUT))
    assert HELD_OUT not in figures["sites"]
    assert figures["overall"]["count"] == sum(e.role == "variant" and e.site != HELD_OUT
                                              and not metrics.reported_apart(e.kind) for e in entries)


def test_an_unknown_site_is_one_line_and_a_failing_exit_code(two_sites, capsys):
    assert main(["calibrate", str(two_sites), "--sites", "nosuchsite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuchsite" in err[0] and HELD_OUT in err[0]


def test_distractors_are_stored_and_never_queried():
    def entry(ident: str, role: str, site: str, reference: str | None = None) -> Entry:
        return Entry(ident, f"{ident}.png", role, reference, "original", "src", site, 1)

    entries = [entry("r1", "reference", "a", "r1"), entry("v1", "variant", "a", "r1"),
               entry("n1", "negative", "b"), entry("d1", "distractor", "b")]
    chosen = for_evaluation(entries, SiteChoice.parse("a", None))
    assert [(e.id, e.role) for e in chosen] == [("r1", "reference"), ("v1", "variant"), ("d1", "reference")]


# --- the report's content ---------------------------------------------------------------------


def test_the_per_kind_table_puts_each_peer_at_its_authors_and_its_best_threshold(two_sites, held_out_report):
    data, out = held_out_report
    text = (out / "report.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| kind |"))
    for peer in data["peers"].values():
        label = peer["label"].split(" (")[0]
        assert f"| {label} |" in header and f"| {label} at ≤ 0.5 % FA |" in header
        best = peer["best_at_fa_budget"]
        assert set(best["kinds"]) == set(peer["kinds"])
        assert all(0.0 <= v <= 1.0 for v in best["kinds"].values())
    assert "copies with a wrong accepted match" in text and "per kind of negative" in text
    assert "wrong_among_accepted" in data["merged"]["overall"]
    negatives = [e for e in read_manifest(two_sites) if e.role == "negative" and e.site == HELD_OUT]
    assert set(data["merged"]["negative_kinds"]) == {e.kind for e in negatives}
    assert "sibling" in data["merged"]["negative_kinds"]  # template siblings apart from other pages
    for kind, shares in data["merged"]["negative_kinds"].items():
        assert shares["count"] == sum(e.kind == kind for e in negatives)


def test_the_contact_sheet_shows_every_listed_case_with_its_pictures(held_out_report):
    data, out = held_out_report
    sheet = data["contact_sheet"]
    page = (out / sheet["path"]).read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page
    images = re.findall(r'src="data:image/jpeg;base64,[A-Za-z0-9+/=]+"', page)
    rows = page.count("<tr>") - 2  # minus the two header rows
    assert rows >= sheet["false_accepts"] + sheet["misses"]
    assert len(images) >= 2 * (sheet["false_accepts"] + sheet["misses"])  # query and an answer or its picture
    assert "contact-sheet.html" in (out / "report.md").read_text()


# --- arithmetic on known inputs -----------------------------------------------------------------


def test_a_wrong_picture_among_accepted_matches_is_counted_even_when_the_top_is_right():
    matrix = np.array([[0.05, 0.08], [0.05, 0.60]])  # copy 0: right on top, another accepted too
    nearest = metrics.Nearest.from_matrix(matrix, np.array([0, 0]))
    flags = metrics.flags_at(nearest, yes=0.10, maybe=0.20)
    assert flags.accepted_right.tolist() == [True, True]
    assert flags.wrong_in_accepted.tolist() == [True, False]
    summary = metrics.summarise(flags, np.array(["variant", "variant"]), np.array(["crop", "crop"]))
    assert summary["overall"]["wrong_among_accepted"] == 0.5


def test_the_search_path_flags_a_wrong_accepted_match_below_a_right_top():
    from engine.decision import Decision

    class Match:
        def __init__(self, ident: str, decision: Decision) -> None:
            self.id, self.decision = ident, decision

    class Result:
        decision = Decision.ACCEPTED
        matches = [Match("right", Decision.ACCEPTED), Match("other", Decision.ACCEPTED)]

    flags = {k: np.zeros(1, dtype=bool) for k in ("accepted_right", "found", "wrong_accept", "accepted",
                                                   "to_review", "wrong_in_accepted")}
    _score(Result(), {"right": 0, "other": 1}, 0, flags, 0)
    assert flags["accepted_right"][0] and not flags["wrong_accept"][0] and flags["wrong_in_accepted"][0]


def test_the_mobile_render_is_reported_apart_and_negatives_per_kind():
    kinds = np.array(["crop", "mobile-render", "unseen-page", "sibling-page", "sibling-page"])
    roles = np.array(["variant", "variant", "negative", "negative", "negative"])
    accepted = np.array([True, False, False, True, False])
    variant = accepted & (roles == "variant")
    flags = Flags(accepted_right=variant, found=variant, wrong_accept=np.zeros(5, bool), accepted=accepted,
                  to_review=np.array([0, 0, 1, 0, 0], bool))
    summary = metrics.summarise(flags, roles, kinds)
    assert summary["overall"] == {"count": 1, "auto_accepted": 1.0, "found": 1.0, "wrong_accepts": 0.0}
    assert summary["kinds"]["mobile-render"]["auto_accepted"] == 0.0 and summary["apart"] == ["mobile-render"]
    assert summary["negative_kinds"]["sibling-page"] == {"count": 2, "false_accepts": 0.5, "to_review": 0.0}
    assert summary["negative_kinds"]["unseen-page"]["to_review"] == 1.0


def test_worst_cases_put_the_surest_false_accepts_first_and_take_misses_kind_by_kind():
    def query(ident: str, role: str, kind: str) -> Entry:
        return Entry(ident, f"{ident}.png", role, None, kind, "src", "a", 1)

    queries = [query("n-far", "negative", "unseen-page"), query("n-near", "negative", "unseen-page"),
               query("c1", "variant", "crop"), query("c2", "variant", "crop"),
               query("m1", "variant", "mirror")]
    truth = np.array([-1, -1, 0, 0, 1])
    flags = Flags(accepted_right=np.zeros(5, bool), found=np.zeros(5, bool), wrong_accept=np.zeros(5, bool),
                  accepted=np.array([1, 1, 0, 0, 0], bool), to_review=np.zeros(5, bool))
    run = SearchRun(flags, 0.0, np.zeros(5), np.array([1, 0, -1, -1, 0]), np.array([0.3, 0.1, np.inf, 1, 1]))
    cases = worst_cases(queries, truth, run, limit=2)
    assert [c.query.id for c in cases["false_accepts"]] == ["n-near", "n-far"]
    assert [c.query.id for c in cases["misses"]] == ["c1", "m1"]

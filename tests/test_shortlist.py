"""Matcher.compare_shortlist: the verifier ranks a shortlist and spends a bounded budget on it.

The shortlist here is the template case: many pages of one site
(which the global hashes cannot tell apart, so the cheap tier leaves them all
unsure) and one modified copy of the page searched for, placed last.
"""

from __future__ import annotations

import pytest
from PIL import ImageDraw

from engine.config import Settings
from engine.decision import Decision
from engine.errors import BadInput
from engine.matching import Matcher
from tests.test_algorithms import as_picture
from tests.test_merging import template_page

SIBLINGS = range(2, 14)


@pytest.fixture(scope="module")
def features() -> dict[str, dict[str, bytes]]:
    """Stored features: sibling pages of one template, then three copies of page 1 (last)."""
    matcher = Matcher(Settings())
    out = {f"sibling-{n}": matcher.extract(as_picture(template_page(n))) for n in SIBLINGS}
    original = template_page(1)
    banner = original.copy()
    ImageDraw.Draw(banner).rectangle((250, 80, 1280, 120), fill=(200, 40, 40))
    out["copy-jpeg"] = matcher.extract(as_picture(original, "JPEG", quality=70))
    out["copy-banner"] = matcher.extract(as_picture(banner))
    out["copy-small"] = matcher.extract(as_picture(original.resize((1024, 640))))
    return out


def query(matcher: Matcher):
    return matcher.query(as_picture(template_page(1)))


def verified(verdicts) -> set[str]:
    return {ident for ident, v in verdicts.items() if "orb" in v.algorithms}


def test_budget_zero_is_compare_on_every_candidate(features) -> None:
    matcher = Matcher(Settings(verify_budget=0))
    q = query(matcher)
    verdicts = matcher.compare_shortlist(q, features)
    assert list(verdicts) == list(features)
    for ident, stored in features.items():
        assert verdicts[ident] == matcher.compare(q, stored)


def test_rank_puts_the_copies_before_the_siblings(features) -> None:
    matcher = Matcher(Settings())
    orb = matcher.algorithm("orb")
    q = query(matcher).features("orb")[0]
    ranks = {ident: orb.rank(q, stored["orb"]) for ident, stored in features.items()}
    best_sibling = max(r for ident, r in ranks.items() if ident.startswith("sibling"))
    assert min(r for ident, r in ranks.items() if ident.startswith("copy")) > best_sibling


@pytest.mark.parametrize("budget", [1, 3])
def test_budget_bounds_the_rejected_verifications_and_keeps_every_copy(features, budget: int) -> None:
    matcher = Matcher(Settings(verify_budget=budget))
    verdicts = matcher.compare_shortlist(query(matcher), features)
    copies = {ident for ident in features if ident.startswith("copy")}
    assert {i for i, v in verdicts.items() if v.decision is not Decision.REJECTED} == copies
    assert copies <= verified(verdicts)  # accepted candidates never use up the budget
    assert len(verified(verdicts) - copies) == budget
    for ident in set(features) - verified(verdicts):  # rejected unverified, cheap results kept
        assert verdicts[ident].decision is Decision.REJECTED
        assert verdicts[ident].algorithms and "orb" not in verdicts[ident].algorithms


def test_budgeted_verdicts_agree_with_full_comparison(features) -> None:
    full = Matcher(Settings(verify_budget=0))
    budgeted = Matcher(Settings(verify_budget=2))
    expected = full.compare_shortlist(query(full), features)
    got = budgeted.compare_shortlist(query(budgeted), features)
    assert {i: v.decision for i, v in got.items()} == {i: v.decision for i, v in expected.items()}
    _, maybe = budgeted.thresholds("orb")
    for ident in verified(got):
        if got[ident].decision is not Decision.REJECTED:
            assert got[ident] == expected[ident]
        else:  # the verifier may stop once it is sure: a lower bound above the MAYBE threshold
            assert maybe < got[ident].algorithms["orb"].distance <= expected[ident].algorithms["orb"].distance


def test_orb_distance_within_is_exact_below_the_bound_and_a_lower_bound_above(features) -> None:
    orb = Matcher(Settings()).algorithm("orb")
    q = query(Matcher(Settings())).features("orb")[0]
    stopped_early = 0
    for stored in features.values():
        exact = orb.distance(q, stored["orb"])
        for bound in (0.05, 0.2, 0.5):
            within = orb.distance_within(q, stored["orb"], bound)
            if exact <= bound:
                assert within == exact
            else:
                assert bound < within <= exact
                stopped_early += within < exact
    assert stopped_early  # the early stop happens (siblings differ more in one direction)


def test_prefetch_is_called_once_with_the_unsure_candidates(features) -> None:
    matcher = Matcher(Settings(verify_budget=2))
    calls = []
    matcher.compare_shortlist(query(matcher), features, prefetch=lambda f, names: calls.append((f, names)))
    assert len(calls) == 1
    fetched, names = calls[0]
    assert list(names) == ["orb"]
    assert len(fetched) == len(features)  # the template case: the cheap tier rejects none of them


def test_flat_mergers_verify_everything(features) -> None:
    matcher = Matcher(Settings(verify_budget=1, decision_merge="majority"))
    verdicts = matcher.compare_shortlist(query(matcher), features)
    assert verified(verdicts) == set(features)


def test_negative_budget_is_bad_input() -> None:
    with pytest.raises(BadInput):
        Matcher(Settings(verify_budget=-1))


def test_a_candidate_every_hash_rejects_is_still_verified_and_accepted() -> None:
    """A page shown inside a sandbox desktop: global hashes see another picture, the verifier aligns it.

    The region codes put such candidates on the shortlist; the cheap tier's
    unanimous NO must not settle them unverified.
    """
    from PIL import Image, ImageDraw

    matcher = Matcher(Settings())
    original = template_page(1)
    desktop = Image.new("RGB", (1920, 1080), (20, 80, 40))
    for x in range(0, 1920, 80):  # a taskbar
        ImageDraw.Draw(desktop).rectangle((x, 1040, x + 60, 1075), fill=(200, 200, 200))
    desktop.paste(original, (300, 120))
    stored = {"page": matcher.extract(as_picture(original)),
              **{f"sibling-{n}": matcher.extract(as_picture(template_page(n))) for n in (2, 3)}}
    q = matcher.query(as_picture(desktop))
    verdicts = matcher.compare_shortlist(q, stored)
    page = verdicts["page"]
    cheap = {name: r for name, r in page.algorithms.items() if name != "orb"}
    assert cheap and all(r.vote.value == "no" for r in cheap.values())  # the hashes alone reject it
    assert page.decision is Decision.ACCEPTED and "orb" in page.algorithms


def test_only_the_closest_accepted_matches_stay_accepted() -> None:
    """A sibling the verifier barely tells apart trails the true copy: it goes to review, with the reason."""
    from engine.decision import AlgorithmResult, Verdict, Vote
    from engine.matching import CLOSER_MARGIN, CLOSER_MATCH, closest_accepted

    def accepted(orb: float) -> Verdict:
        return Verdict(orb, Decision.ACCEPTED, {"phash": AlgorithmResult(0.0, Vote.YES),
                                                "orb": AlgorithmResult(orb, Vote.YES)})

    verdicts = {"copy": accepted(0.0), "twin": accepted(CLOSER_MARGIN / 2), "sibling": accepted(0.03),
                "other": Verdict(0.9, Decision.REJECTED, {})}
    kept = closest_accepted(verdicts)
    assert kept["copy"] == verdicts["copy"] and kept["twin"] == verdicts["twin"]  # copies within the margin
    assert kept["sibling"].decision is Decision.TO_REVIEW and kept["sibling"].reason == CLOSER_MATCH
    assert kept["other"] == verdicts["other"]
    alone = {"sibling": verdicts["sibling"]}
    assert closest_accepted(alone) == alone  # nothing closer: accepted
    # a stored copy in the closest match's cluster stays accepted, however far it trails
    same_cluster = closest_accepted(verdicts, {"copy": 4, "twin": 4, "sibling": 4, "other": 9})
    assert same_cluster["sibling"] == verdicts["sibling"]
    # the query's own stored picture (distance 0) is not the yardstick for the others
    own = {"query": accepted(0.0), "copy": accepted(0.03)}
    assert closest_accepted(own, own="query") == own

"""Distance and decision mergers, their ties, and the Matcher's lazy pyramidal verification."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from engine.config import AlgorithmSettings, Settings
from engine.decision import Decision, Vote
from engine.errors import BadInput
from engine.matching import Matcher
from engine.merging import (
    DECISION_MERGERS,
    DISTANCE_MERGERS,
    decision_merger,
    distance_merger,
    majority,
    merge_harmonic_mean,
    merge_max,
    merge_mean,
    merge_min,
    merge_weighted_mean,
    pareto,
    pyramidal,
    weighted_majority,
)
from tests.test_algorithms import as_picture, page, photo

Y, M, N = Vote.YES, Vote.MAYBE, Vote.NO


def tiers(*groups):
    """Lazy tiers from lists of (vote, weight); records which tiers ran."""
    ran: list[int] = []

    def make(i, group):
        def run():
            ran.append(i)
            return group
        return run
    return [make(i, g) for i, g in enumerate(groups)], ran


# ------------------------------------------------------------------ distances

def test_distance_mergers_on_known_values() -> None:
    pairs = [(0.1, 1.0), (0.4, 3.0)]
    assert merge_max(pairs) == 0.4
    assert merge_min(pairs) == 0.1
    assert merge_mean(pairs) == pytest.approx(0.25)
    assert merge_weighted_mean(pairs) == pytest.approx((0.1 + 1.2) / 4)
    assert merge_harmonic_mean(pairs) == pytest.approx(4 / (1 / 0.1 + 3 / 0.4))


def test_harmonic_mean_is_not_zero_for_positive_distances() -> None:
    """douglas-quaid's harmonic mean returned 0 for everything."""
    assert merge_harmonic_mean([(0.5, 1.0), (0.5, 1.0)]) == pytest.approx(0.5)
    assert merge_harmonic_mean([(0.2, 1.0), (0.6, 1.0)]) == pytest.approx(0.3)


def test_harmonic_mean_zero_distance_is_the_limit_zero() -> None:
    assert merge_harmonic_mean([(0.0, 1.0), (0.9, 1.0)]) == 0.0
    # a zero distance with zero weight does not count
    assert merge_harmonic_mean([(0.0, 0.0), (0.9, 1.0)]) == pytest.approx(0.9)


def test_zero_weights_fall_back_to_equal_weights() -> None:
    assert merge_weighted_mean([(0.2, 0.0), (0.4, 0.0)]) == pytest.approx(0.3)
    assert merge_harmonic_mean([(0.2, 0.0), (0.6, 0.0)]) == pytest.approx(0.3)


@pytest.mark.parametrize("name", DISTANCE_MERGERS)
def test_distance_mergers_refuse_empty_and_negative_weights(name: str) -> None:
    with pytest.raises(BadInput):
        distance_merger(name)([])
    with pytest.raises(BadInput):
        distance_merger(name)([(0.2, -1.0)])


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0.01, 10)), min_size=1, max_size=8))
def test_distance_mergers_stay_between_min_and_max(pairs) -> None:
    low, high = min(d for d, _ in pairs), max(d for d, _ in pairs)
    for merge in DISTANCE_MERGERS.values():
        assert low - 1e-9 <= merge(pairs) <= high + 1e-9


def test_unknown_merger_names_are_bad_input() -> None:
    with pytest.raises(BadInput):
        distance_merger("median")
    with pytest.raises(BadInput):
        decision_merger("unanimous")


# ------------------------------------------------------------------ decisions

def flat(*ballots):
    return tiers(list(ballots))[0]


def test_pareto_needs_eighty_percent() -> None:
    assert pareto(flat((Y, 1), (Y, 1), (Y, 1), (Y, 1), (N, 1))) is Y  # 80 %
    assert pareto(flat((Y, 1), (Y, 1), (Y, 1), (N, 1))) is M  # 75 %
    assert pareto(flat((N, 1), (N, 1), (N, 1), (N, 1), (M, 1))) is N
    assert pareto(flat((N, 5), (Y, 1), (Y, 1))) is M  # counts, not weights


def test_majority_and_its_ties() -> None:
    assert majority(flat((Y, 1), (Y, 1), (N, 1))) is Y
    assert majority(flat((Y, 1), (N, 1))) is M  # tie -> to review
    assert majority(flat((Y, 1), (M, 1), (N, 1))) is M  # three-way tie
    assert majority(flat((N, 9), (Y, 1), (Y, 1))) is Y  # weights ignored


def test_weighted_majority_and_its_ties() -> None:
    assert weighted_majority(flat((N, 3), (Y, 1), (Y, 1))) is N
    assert weighted_majority(flat((N, 2), (Y, 1), (Y, 1))) is M  # 2 vs 2: tie
    assert weighted_majority(flat((M, 1), (Y, 0.5))) is M


@pytest.mark.parametrize("name", DECISION_MERGERS)
def test_decision_mergers_refuse_no_votes(name: str) -> None:
    with pytest.raises(BadInput):
        decision_merger(name)(flat())


def test_flat_mergers_run_every_tier() -> None:
    groups, ran = tiers([(N, 1)], [(Y, 1)])
    assert majority(groups) is M
    assert ran == [0, 1]


def test_pyramidal_stops_when_cheap_tier_is_all_no() -> None:
    groups, ran = tiers([(N, 1), (N, 1), (N, 2)], [(Y, 1)])
    assert pyramidal(groups) is N
    assert ran == [0]


def test_pyramidal_verifier_decides_when_cheap_tier_unsure() -> None:
    groups, ran = tiers([(N, 1), (M, 1), (N, 1)], [(Y, 1)])
    assert pyramidal(groups) is Y  # e.g. a copy with an injected banner
    assert ran == [0, 1]


def test_pyramidal_verifier_vetoes_a_template_look_alike() -> None:
    groups, ran = tiers([(Y, 1), (Y, 1), (Y, 1)], [(N, 1)])
    assert pyramidal(groups) is N
    assert ran == [0, 1]


def test_pyramidal_single_tier_is_weighted_majority() -> None:
    assert pyramidal(tiers([(Y, 1), (Y, 1), (N, 1)])[0]) is Y
    assert pyramidal(tiers([(Y, 1), (N, 1)])[0]) is M


# ------------------------------------------------------------------ the Matcher

@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(Settings())


def test_matcher_extracts_every_enabled_algorithm(matcher: Matcher) -> None:
    features = matcher.extract(as_picture(photo(1)))
    assert set(features) == {a.name for a in matcher.algorithms}
    assert all(isinstance(f, bytes) for f in features.values())
    codes = matcher.prefilter_codes(features)
    sizes = {name: a.hamming_bits // 8 for a in matcher.algorithms if a.prefilter
             for name in a.codes(features[a.name])}
    assert codes and {n: len(c) for n, c in codes.items()} == sizes


def test_identical_pictures_are_accepted(matcher: Matcher) -> None:
    picture = as_picture(page(3))
    verdict = matcher.compare(matcher.query(picture), matcher.extract(picture))
    assert verdict.decision is Decision.ACCEPTED
    assert verdict.distance == 0.0
    assert set(verdict.algorithms) == {a.name for a in matcher.algorithms if a.votes}


def test_clearly_different_pictures_never_compute_the_verifier(matcher: Matcher) -> None:
    costly = [a.name for a in matcher.algorithms if a.cost >= 100]
    assert costly, "the default set should include a costly verifier"
    query = matcher.query(as_picture(photo(7)))
    verdict = matcher.compare(query, matcher.extract(as_picture(page(8))))
    assert verdict.decision is Decision.REJECTED
    assert not set(costly) & set(verdict.algorithms)
    assert not set(costly) & query.extracted  # not even the query feature


def test_settings_override_thresholds_and_enable_algorithms() -> None:
    settings = Settings(algorithms={"phash": AlgorithmSettings(yes=0.0, maybe=0.0),
                                    "ahash": AlgorithmSettings(enabled=True),
                                    "pdq-screen": AlgorithmSettings(enabled=False)},
                        decision_merge="majority", distance_merge="max")
    m = Matcher(settings)
    names = {a.name for a in m.algorithms}
    assert "ahash" in names and "pdq-screen" not in names
    assert m.thresholds("phash") == (0.0, 0.0)
    assert m.thresholds("dhash") == (m.algorithm("dhash").yes_threshold, m.algorithm("dhash").maybe_threshold)


def test_unknown_settings_are_bad_input() -> None:
    with pytest.raises(BadInput):
        Matcher(Settings(algorithms={"nope": AlgorithmSettings()}))
    with pytest.raises(BadInput):
        Matcher(Settings(decision_merge="nope"))


def test_missing_stored_features_are_skipped(matcher: Matcher) -> None:
    picture = as_picture(photo(2))
    stored = {"pdq-screen": matcher.extract(picture)["pdq-screen"]}
    verdict = matcher.compare(picture, stored)
    assert set(verdict.algorithms) == {"pdq-screen"}
    nothing = matcher.compare(picture, {})
    assert nothing.decision is Decision.REJECTED and nothing.distance == 1.0


def test_orientations_match_a_mirrored_copy() -> None:
    image = photo(4)
    mirrored = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    plain = Matcher(Settings(decision_merge="weighted_majority"))
    oriented = Matcher(Settings(decision_merge="weighted_majority", all_orientations=True))
    stored = plain.extract(as_picture(image))
    assert plain.compare(as_picture(mirrored), stored).decision is not Decision.ACCEPTED
    verdict = oriented.compare(as_picture(mirrored), stored)
    assert verdict.decision is Decision.ACCEPTED
    query = oriented.query(as_picture(mirrored))
    orientable = {a.name for a in oriented.algorithms if a.orientable}
    assert all(len(codes) == 8 for name, codes in oriented.query_codes(query).items() if name in orientable)


def test_banner_copy_is_not_rejected(matcher: Matcher) -> None:
    """A copy with an injected banner stays accepted or to-review (never silently lost)."""
    image = page(5)
    banner = image.copy()
    ImageDraw.Draw(banner).rectangle((0, 0, image.width, 60), fill=(200, 30, 30))
    verdict = matcher.compare(as_picture(banner), matcher.extract(as_picture(image)))
    assert verdict.decision is not Decision.REJECTED, verdict.to_json()


def template_page(content: int, size: tuple[int, int] = (1280, 800)) -> Image.Image:
    """One site's template (header, menu, sidebar, footer) around content chosen by ``content``."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, size[0], 80), fill=(18, 53, 91))
    draw.text((40, 30), "Example Bank - secure online banking", fill="white")
    for i, label in enumerate(("Home", "Accounts", "Cards", "Loans", "Help")):
        draw.text((500 + i * 110, 30), label, fill=(220, 230, 245))
    draw.rectangle((0, 80, 250, size[1]), fill=(241, 244, 248))
    for i in range(12):
        draw.text((20, 110 + i * 28), f"Menu entry {i}", fill=(18, 53, 91))
    draw.rectangle((0, size[1] - 50, size[0], size[1]), fill=(40, 40, 40))
    rng = np.random.default_rng(content)
    draw.text((290, 110), f"Article {content}", fill=(0, 0, 0))
    y = 150
    while y < size[1] - 300:
        x = 290
        while x < 900:
            width = int(rng.integers(20, 80))
            draw.rectangle((x, y, x + width, y + 9), fill=(60, 60, 60))
            x += width + 8
        y += int(rng.integers(20, 30))
    image.paste(photo(content + 50, (300, 200)), (int(rng.integers(290, 900)), size[1] - 270))
    return image


def test_other_pages_of_one_template_are_rejected(matcher: Matcher) -> None:
    """Global hashes call some of these pages the same; the default decision must not."""
    stored = matcher.extract(as_picture(template_page(1)))
    hash_yes = 0
    for content in (2, 3, 4):
        verdict = matcher.compare(as_picture(template_page(content)), stored)
        assert verdict.decision is Decision.REJECTED, verdict.to_json()
        hash_yes += sum(verdict.algorithms[n].vote is Vote.YES for n in ("dhash", "forbild-screen"))
    assert hash_yes > 0  # the look-alike is real: without the verifier these would be accepted


def test_banner_on_a_template_page_is_kept(matcher: Matcher) -> None:
    original = template_page(1)
    banner = original.copy()
    ImageDraw.Draw(banner).rectangle((250, 80, 1280, 130), fill=(200, 40, 40))
    verdict = matcher.compare(as_picture(banner), matcher.extract(as_picture(original)))
    assert verdict.decision is not Decision.REJECTED, verdict.to_json()

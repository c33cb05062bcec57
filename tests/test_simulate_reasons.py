"""Calibration's replay of the merged decision honours the verifier's reason, as the search path does.

A sibling page whose ORB distance is 0 but whose verifier says ``same-template`` is to-review on the search
path; the replay from the distance table must not count it as a false accept (calibration would then
tune thresholds against a problem the search path does not have), nor count a copy held back this way as
auto-accepted.
"""

from __future__ import annotations

import numpy as np

from engine.config import AlgorithmSettings, Settings
from engine.evaluation.features import REASONS, DistanceTable
from engine.evaluation.manifest import Entry
from engine.evaluation.simulate import simulate


def entry(ident: str, role: str, reference: str | None) -> Entry:
    return Entry(ident, f"{ident}.png", role, reference, "x", "", "site", 1)


def table(reason: str) -> DistanceTable:
    """One stored page; a copy of it and a sibling page as queries, both at ORB distance 0."""
    references = [entry("page", "reference", "page")]
    queries = [entry("copy", "variant", "page"), entry("sibling", "negative", None)]
    distances = {"phash": np.array([[0.0], [0.0]]), "orb": np.array([[0.0], [0.0]])}
    codes = np.array([[0], [REASONS.index(reason)]], np.uint8)
    return DistanceTable(references, queries, np.array([0, -1]), distances, {"orb": codes})


def settings() -> Settings:
    """pHash and ORB only (the defaults' other algorithms off)."""
    others = ("dhash", "pdq-screen", "goldberg-screen", "forbild-screen", "regions")
    return Settings(algorithms={"phash": AlgorithmSettings(yes=0.1, maybe=0.2),
                                "orb": AlgorithmSettings(yes=0.1, maybe=0.2),
                                **{name: AlgorithmSettings(enabled=False) for name in others}})


def test_a_pair_the_verifier_calls_same_template_is_replayed_as_to_review() -> None:
    flags = simulate(table("same-template"), settings())
    assert bool(flags.accepted[0]) and bool(flags.accepted_right[0])  # the copy: no reason, accepted
    assert not flags.accepted[1] and bool(flags.to_review[1])  # the sibling: held back, as on the search path


def test_without_a_reason_the_same_distances_accept_both() -> None:
    flags = simulate(table(""), settings())
    assert bool(flags.accepted[1])

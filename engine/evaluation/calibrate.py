"""``quaid calibrate``: thresholds and merge settings derived from a labelled set.

Where to start: :func:`calibrate`. Steps:

1. per algorithm (brute-force distances, :mod:`engine.evaluation.features`):
   YES = the largest distance whose pair precision (copy vs. its reference
   against each query's nearest wrong reference) still reaches the target
   precision; MAYBE = the largest distance that sends fewer than
   :data:`REVIEW_SHARE` of the negatives to review on top of that;
2. merge settings: every decision merger, a few distance mergers, weight
   schemes and scalings of the YES thresholds are replayed with quaid's own
   merging code (:mod:`engine.evaluation.simulate`); the winner auto-accepts
   the most modified copies with false accepts (negatives accepted, or a
   copy accepted with a wrong top match) <= 0.5 % and to-review < 5 % of the
   negatives;
3. the result is a settings file in :func:`engine.config.settings_to_dict`
   form (only the keys calibration decides), which ``QUAID_CONFIG`` loads,
   or which becomes ``engine/calibrated.json``, the shipped defaults.

Calibrate on some sites (``--sites``) and evaluate on the others: figures from
the pages the thresholds were tuned on predict nothing.

douglas-quaid calibrated on 46 pictures; this needs a set like the one
``quaid dataset build`` makes (hundreds of references, thousands of copies).
"""

from __future__ import annotations

import itertools
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.algorithms.base import COSTLY
from engine.config import AlgorithmSettings, Settings
from engine.evaluation.evaluate import algorithms_for
from engine.evaluation.features import DistanceTable, cached_table
from engine.evaluation.manifest import read_manifest
from engine.evaluation.metrics import (
    FA_BUDGET,
    REVIEW_BUDGET,
    Nearest,
    best_accept_at_budget,
    pair_scores,
    recall_at_precision,
    summarise,
)
from engine.evaluation.simulate import TableMatcher, candidates, simulate
from engine.evaluation.sites import SiteChoice, for_calibration

REVIEW_SHARE = 0.04  # per-algorithm review load on negatives (margin under the 5 % budget)
YES_SCALES = (0.8, 1.0, 1.25)
GATE = 0.5  # distance: a cheap algorithm's MAYBE when it only pre-selects for a verifier
DISTANCE_MERGES = ("weighted_mean", "min")


@dataclass(frozen=True)
class Candidate:
    """One merge configuration tried, with its simulated figures."""

    settings: Settings
    auto_accepted: float
    found: float
    false_accepts: float
    wrong_accepts: float
    to_review: float

    @property
    def admissible(self) -> bool:
        return (self.false_accepts <= FA_BUDGET and self.wrong_accepts <= FA_BUDGET
                and self.to_review < REVIEW_BUDGET)

    def key(self) -> tuple:
        return (self.admissible, self.auto_accepted, self.found, -self.false_accepts - self.wrong_accepts)


def algorithm_thresholds(table: DistanceTable, precision: float) -> dict[str, tuple[float, float]]:
    """Per algorithm (YES, MAYBE) as described in the module docstring."""
    roles = np.array([q.role for q in table.queries])
    out = {}
    for name, matrix in table.distances.items():
        nearest = Nearest.from_matrix(matrix, table.truth)
        positives, negatives = pair_scores(nearest, roles)
        out[name] = thresholds_from_scores(positives, negatives, nearest.best[roles == "negative"], precision)
    return out


def thresholds_from_scores(positives: np.ndarray, negatives: np.ndarray, review_negatives: np.ndarray,
                           precision: float) -> tuple[float, float]:
    """(YES, MAYBE) of one algorithm from labelled distances; shared by every calibration input.

    ``positives`` / ``negatives`` are same-picture / different-picture pair
    distances (YES: best recall at ``precision``, or just under the nearest
    negative when none reaches it); ``review_negatives`` are the distances that
    would land in review when above YES (MAYBE bounds their share, see
    :func:`_maybe`). A dataset gives each negative query's nearest reference;
    the review queue gives the pairs analysts rejected
    (:mod:`engine.evaluation.review_labels`).
    """
    recall, yes = recall_at_precision(positives, negatives, precision)
    if recall == 0.0:
        finite = negatives[np.isfinite(negatives)]
        yes = max(0.0, float(np.nextafter(finite.min(), -np.inf))) if finite.size else 0.0
    return yes, _maybe(review_negatives, yes)


def _maybe(negative_best: np.ndarray, yes: float) -> float:
    """The largest threshold >= yes sending under REVIEW_SHARE of the negatives to review."""
    above = np.sort(negative_best[np.isfinite(negative_best) & (negative_best > yes)])
    allowed = int(np.ceil(REVIEW_SHARE * len(negative_best))) - 1
    if allowed < 0 or not above.size:
        return yes
    if allowed >= above.size:
        return 1.0
    return max(yes, float(np.nextafter(above[allowed], -np.inf)))


def _weight_schemes(table: DistanceTable, names: list[str], costly: set[str]) -> dict[str, dict[str, float]]:
    roles = np.array([q.role for q in table.queries])
    uniform = dict.fromkeys(names, 1.0)
    verifier = {n: (3.0 if n in costly else 1.0) for n in names}
    recall = {}
    for name in names:
        positives, negatives = pair_scores(Nearest.from_matrix(table.distances[name], table.truth), roles)
        recall[name] = round(0.25 + recall_at_precision(positives, negatives, 0.999)[0], 3)
    return {"uniform": uniform, "verifier": verifier, "recall": recall}


def calibrate(folder: Path, base: Settings, precision: float = 0.999, progress: bool = True,
              sites: SiteChoice | None = None) -> tuple:
    """Returns (best Candidate, every Candidate tried, per-algorithm thresholds, figures per kind).

    ``sites`` limits everything used (stored pictures too) to some sites, so that the others can
    measure the result (:mod:`engine.evaluation.sites`).
    """
    folder = Path(folder)
    entries = for_calibration(read_manifest(folder), sites if sites is not None else SiteChoice())
    table = cached_table(folder, entries, base, progress, algorithms_for(base))
    names = list(table.distances)
    costly = {a.name for a in algorithms_for(base) if a.cost >= COSTLY}
    base_thresholds = algorithm_thresholds(table, precision)
    roles = np.array([q.role for q in table.queries])
    kinds = np.array([q.kind for q in table.queries])
    options = _threshold_options(table, names, costly, base_thresholds, roles)
    tried: list[Candidate] = []
    combos = list(itertools.product(("pyramidal", "weighted_majority", "majority", "pareto"), DISTANCE_MERGES,
                                    _weight_schemes(table, names, costly).values(), options, YES_SCALES))
    shortlists = None
    for decision, distance, weights, chosen, scale in _bar(combos, progress):
        algos = {n: AlgorithmSettings(enabled=True, yes=_floor(min(chosen[n][0] * scale, chosen[n][1])),
                                      maybe=_floor(chosen[n][1]), weight=weights[n]) for n in names}
        settings = replace(base, algorithms={**base.algorithms, **algos}, decision_merge=decision,
                           distance_merge=distance)
        if shortlists is None:
            shortlists = candidates(table, TableMatcher(settings, table))
        figures = summarise(simulate(table, settings, shortlists), roles, kinds)
        tried.append(Candidate(settings, figures["overall"]["auto_accepted"], figures["overall"]["found"],
                               figures["negatives"]["false_accepts"], figures["overall"]["wrong_accepts"],
                               figures["negatives"]["to_review"]))
    best = max(tried, key=lambda c: c.key())
    per_kind = summarise(simulate(table, best.settings, shortlists), roles, kinds)
    per_kind["sites"] = sorted({e.site for e in entries})
    return best, tried, base_thresholds, per_kind


def _floor(value: float) -> float:
    """Rounded down to 6 decimals: a threshold just under a negative's distance must stay under it."""
    return math.floor(value * 1e6) / 1e6


def _threshold_options(table: DistanceTable, names: list[str], costly: set[str],
                       base: dict[str, tuple[float, float]], roles: np.ndarray) -> list[dict]:
    """Threshold sets to try: the per-algorithm ones, and a *gate* set for the pyramidal merger.

    In the gate set the cheap algorithms' MAYBE is wide (:data:`GATE`): they
    only have to keep a candidate for the verifier, whose YES is then the
    largest distance with false accepts on negatives within the budget and
    whose MAYBE bounds the review load.
    """
    gate = {}
    for name in names:
        if name in costly:
            nearest = Nearest.from_matrix(table.distances[name], table.truth)
            yes = max(0.0, best_accept_at_budget(nearest, roles)["threshold"])
            gate[name] = (yes, _maybe(nearest.best[roles == "negative"], yes))
        else:
            gate[name] = (base[name][0], max(base[name][1], GATE))
    return [base, gate] if costly else [base]


def calibrated_dict(settings: Settings) -> dict:
    """The keys calibration decides, in :func:`engine.config.settings_to_dict` form."""
    return {
        "algorithms": {n: dict(a.__dict__) for n, a in sorted(settings.algorithms.items())},
        "decision_merge": settings.decision_merge,
        "distance_merge": settings.distance_merge,
    }


def _bar(items, enabled: bool):
    from tqdm import tqdm

    return tqdm(items, desc="merge settings", file=sys.stderr, disable=not enabled, leave=False)

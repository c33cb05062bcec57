"""``quaid calibrate --review``: per-algorithm thresholds from the analysts' review verdicts.

Why: the review queue (:mod:`engine.service.review`) stores every to-review
pair an analyst judged, with each algorithm's distance at search time. Those
verdicts are labels on the user's own pictures, so they can move thresholds
where the generated set cannot: a same-picture pair that kept landing in
review pulls YES up, a different-picture pair pushes MAYBE down.

Where to start: :func:`calibrate_from_labels`. Per algorithm, the distances of
the pairs judged *same* are the positives and those judged *different* the
negatives, and the one threshold derivation of ``quaid calibrate DATASET``
(:func:`engine.evaluation.calibrate.thresholds_from_scores`) gives YES (best
recall at the target precision, as in thorn's perception benchmark) and MAYBE
(at most ``REVIEW_SHARE`` of the rejected pairs left in review).

Limits, said plainly: the verdicts only sample pairs that reached review, so
the review-load bound is relative to those pairs, not to all traffic; the
merge strategy and weights are not re-derived (that needs whole queries, i.e.
a dataset) and are kept from the current settings; an algorithm with too few
judged distances (e.g. a costly verifier the pyramidal merger never ran)
keeps its current thresholds.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import numpy as np

from engine.config import AlgorithmSettings, Settings
from engine.errors import BadInput
from engine.evaluation.calibrate import _floor, thresholds_from_scores

MIN_VERDICTS = 10  # of each kind (same / different), overall and per algorithm


@dataclass(frozen=True)
class AlgorithmFit:
    """One algorithm's new thresholds and their rates on the judged pairs."""

    yes: float
    maybe: float
    same: int  # judged pairs with this algorithm's distance
    different: int
    same_accepted: float  # share of same pairs at distance <= YES
    same_found: float  # share of same pairs at distance <= MAYBE
    different_accepted: float  # false accepts
    different_review: float  # share of different pairs left in review (YES < d <= MAYBE)


@dataclass(frozen=True)
class ReviewCalibration:
    settings: Settings  # the current settings with the fitted algorithms' thresholds replaced
    fits: dict[str, AlgorithmFit]
    kept: list[str]  # algorithms left at their current thresholds (too few distances)
    same: int
    different: int


def fetch_labels(server: str | None, store_settings: Settings) -> list[dict]:
    """The judged pairs, from a running service (``$QUAID_API_KEY``) or from the local store."""
    if server:
        from quaid_client import QuaidClient

        with QuaidClient(server, os.environ.get("QUAID_API_KEY")) as client:
            return client.labels()
    from engine.review import ReviewQueue
    from engine.store.connect import connect

    connection = connect(store_settings.redis_url, store_settings.home)
    try:
        return ReviewQueue(connection.client).labels()
    finally:
        connection.close()


def calibrate_from_labels(labels: list[dict], base: Settings, precision: float = 0.999,
                          minimum: int = MIN_VERDICTS) -> ReviewCalibration:
    """Fit YES/MAYBE per algorithm from review ``labels`` (``ReviewQueue.labels()`` items).

    Raises :class:`BadInput` when fewer than ``minimum`` pairs of either kind
    were judged: thresholds from a handful of verdicts would be noise.
    """
    same = sum(1 for label in labels if label.get("same"))
    different = len(labels) - same
    if same < minimum or different < minimum:
        raise BadInput(f"too few review verdicts to calibrate: {same} same and {different} different "
                       f"(need at least {minimum} of each; judge more items in the review queue)")
    fits: dict[str, AlgorithmFit] = {}
    kept = []
    for name, (positives, negatives) in sorted(_scores(labels).items()):
        if positives.size < minimum or negatives.size < minimum:
            kept.append(name)
            continue
        yes, maybe = thresholds_from_scores(positives, negatives, negatives, precision)
        yes, maybe = _floor(min(yes, maybe)), _floor(maybe)
        maybe = max(maybe, yes)
        fits[name] = AlgorithmFit(
            yes, maybe, int(positives.size), int(negatives.size),
            _share(positives <= yes), _share(positives <= maybe),
            _share(negatives <= yes), _share((negatives > yes) & (negatives <= maybe)))
    kept += sorted(set(base.algorithms) - set(fits) - set(kept))
    algorithms = dict(base.algorithms)
    for name, fit in fits.items():
        current = base.algorithm(name)
        algorithms[name] = AlgorithmSettings(enabled=current.enabled, yes=fit.yes, maybe=fit.maybe,
                                             weight=current.weight)
    return ReviewCalibration(replace(base, algorithms=algorithms), fits, kept, same, different)


def _scores(labels: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per algorithm: (distances of pairs judged same, distances of pairs judged different)."""
    collected: dict[str, tuple[list[float], list[float]]] = {}
    for label in labels:
        for name, result in (label.get("algorithms") or {}).items():
            distance = result.get("distance") if isinstance(result, dict) else None
            if not isinstance(distance, (int, float)) or not math.isfinite(distance):
                continue
            collected.setdefault(name, ([], []))[0 if label.get("same") else 1].append(float(distance))
    return {name: (np.array(pos, dtype=float), np.array(neg, dtype=float))
            for name, (pos, neg) in collected.items()}


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else 0.0

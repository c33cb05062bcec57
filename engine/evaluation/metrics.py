"""Figures from distances or decisions: auto-accepted, found, false accepts, recall at precision.

Definitions (per query; a variant's *reference* is the picture it was made from):

- auto-accepted (variants): the answer is ``accepted`` and the top match is
  its reference (ties at the best distance count as right);
- found (variants): its reference is among the matches answered
  ``accepted`` or ``to-review``;
- wrong accept (variants): ``accepted`` with another picture on top;
- wrong among accepted (variants): another picture is among the matches
  answered ``accepted`` (a copy that automation would link to a wrong picture);
- false accept (negatives): any match ``accepted``; to-review (negatives): the
  best answer is ``to-review``;
- recall at precision P, in the manner of thorn's perception benchmark
  (``perception.benchmarking``): over pairs, positives are (variant, its
  reference), non-matches are each query's nearest wrong reference; the
  largest share of positives under a threshold whose precision is >= P.

Kinds reported apart (:func:`reported_apart`: the mobile render, a different
layout rather than a copy) count in their own row, not in the overall shares;
negatives are also summarised per kind, so template siblings show apart from
other unseen pages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FA_BUDGET = 0.005  # false accepts on negatives allowed (<= 0.5 %: what automation can live with)
REVIEW_BUDGET = 0.05  # share of negatives sent to review (< 5 %: what reviewers can keep up with)


@dataclass(frozen=True)
class Nearest:
    """Per query, from one algorithm's (queries x references) distance matrix (NaN = not compared)."""

    best: np.ndarray  # smallest distance to any reference
    right: np.ndarray  # the true reference reaches that smallest distance
    true: np.ndarray  # distance to the true reference (NaN for negatives)
    wrong: np.ndarray  # smallest distance to any other reference

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, truth: np.ndarray) -> Nearest:
        filled = np.where(np.isnan(matrix), np.inf, matrix)
        rows = np.arange(len(truth))
        positive = truth >= 0
        true = np.full(len(truth), np.nan)
        true[positive] = filled[rows[positive], truth[positive]]
        others = filled.copy()
        others[rows[positive], truth[positive]] = np.inf
        best = filled.min(axis=1) if filled.size else np.full(len(truth), np.inf)
        wrong = others.min(axis=1) if others.size else np.full(len(truth), np.inf)
        right = positive & (true <= best + 1e-12)
        return cls(best, right, true, wrong)


@dataclass(frozen=True)
class Flags:
    """Per query booleans of the answer; the unit every summary is computed from."""

    accepted_right: np.ndarray
    found: np.ndarray
    wrong_accept: np.ndarray
    accepted: np.ndarray  # any match accepted (a false accept when the query is a negative)
    to_review: np.ndarray  # best answer is to-review
    wrong_in_accepted: np.ndarray | None = None  # a wrong picture among the accepted matches (None: unknown)


def flags_at(nearest: Nearest, yes: float, maybe: float) -> Flags:
    """One algorithm alone at thresholds (yes, maybe), from its nearest-reference distances."""
    accepted = nearest.best <= yes
    return Flags(
        accepted_right=accepted & nearest.right,
        found=np.nan_to_num(nearest.true, nan=np.inf) <= maybe,
        wrong_accept=accepted & ~nearest.right,
        accepted=accepted,
        to_review=~accepted & (nearest.best <= maybe),
        wrong_in_accepted=nearest.wrong <= yes,
    )


def reported_apart(kind: str) -> bool:
    """Kinds kept out of the overall shares: the mobile render (another layout of the page)."""
    return kind.startswith("mobile")


def summarise(flags: Flags, roles: np.ndarray, kinds: np.ndarray) -> dict:
    """Shares overall (kinds reported apart excluded), per modification kind (variants), for negatives
    and per negative kind."""
    variant, negative = roles == "variant", roles == "negative"
    apart = np.array([reported_apart(str(k)) for k in kinds], dtype=bool)
    out = {"overall": _variant_shares(flags, variant & ~apart),
           "negatives": _negative_shares(flags, negative)}
    out["kinds"] = {str(kind): _variant_shares(flags, variant & (kinds == kind))
                    for kind in sorted(set(kinds[variant]))}
    out["apart"] = sorted(k for k in out["kinds"] if reported_apart(k))
    out["negative_kinds"] = {str(kind): _negative_shares(flags, negative & (kinds == kind))
                             for kind in sorted(set(kinds[negative]))}
    return out


def _share(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else 0.0


def _variant_shares(flags: Flags, mask: np.ndarray) -> dict:
    shares = {"count": int(mask.sum()), "auto_accepted": _share(flags.accepted_right, mask),
              "found": _share(flags.found, mask), "wrong_accepts": _share(flags.wrong_accept, mask)}
    if flags.wrong_in_accepted is not None:
        shares["wrong_among_accepted"] = _share(flags.wrong_in_accepted, mask)
    return shares


def _negative_shares(flags: Flags, mask: np.ndarray) -> dict:
    return {"count": int(mask.sum()), "false_accepts": _share(flags.accepted, mask),
            "to_review": _share(flags.to_review, mask)}


def recall_at_precision(positives: np.ndarray, negatives: np.ndarray,
                        precision: float) -> tuple[float, float]:
    """(recall, threshold): the best recall of a threshold whose pair precision is >= ``precision``."""
    positives = positives[np.isfinite(positives)]
    negatives = negatives[np.isfinite(negatives)]
    if not positives.size:
        return 0.0, 0.0
    thresholds = np.unique(np.concatenate([positives, negatives]))
    tp = np.searchsorted(np.sort(positives), thresholds, side="right")
    fp = np.searchsorted(np.sort(negatives), thresholds, side="right")
    ok = tp / np.maximum(tp + fp, 1) >= precision
    if not ok.any():
        return 0.0, 0.0
    best = int(np.argmax(np.where(ok, tp, -1)))
    return float(tp[best] / positives.size), float(thresholds[best])


def pair_scores(nearest: Nearest, roles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(match distances, non-match distances) for histograms and precision/recall."""
    positives = nearest.true[roles == "variant"]
    negatives = np.concatenate([nearest.wrong[roles == "variant"], nearest.best[roles == "negative"]])
    return positives, negatives


def best_accept_at_budget(nearest: Nearest, roles: np.ndarray, budget: float = FA_BUDGET) -> dict:
    """The largest YES threshold keeping false accepts on negatives <= ``budget``; its auto-accepted share.

    The threshold is -1 when even distance 0 accepts too many negatives
    (global hashes give some unseen pages of a site a distance of 0).
    """
    variant, negative = roles == "variant", roles == "negative"
    neg = np.sort(nearest.best[negative])
    allowed = int(np.floor(budget * len(neg) + 1e-9))
    threshold = 1.0 if allowed >= len(neg) else float(np.nextafter(neg[allowed], -np.inf))
    if threshold < 0:
        threshold = -1.0
    accepted = (nearest.best <= threshold) & nearest.right
    return {"threshold": threshold, "auto_accepted": _share(accepted, variant),
            "false_accepts": _share(nearest.best <= threshold, negative)}

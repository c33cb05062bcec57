"""Merging per-algorithm results into one distance and one vote.

Distance mergers take ``(distance, weight)`` pairs and return a distance in
[0, 1]. Decision mergers take *tiers* of ballots: an iterable of zero-argument
callables, each returning the ``(vote, weight)`` ballots of one cost tier
(cheapest first). Flat mergers (Pareto, majority, weighted majority) evaluate
every tier; the pyramidal merger stops as soon as a tier decides, so the
algorithms of later (costly) tiers are never computed for clear cases.

Ties and disagreements resolve to MAYBE (to-review): when algorithms disagree
evenly a human should look, and neither clients nor automation should act.

Registries: :data:`DISTANCE_MERGERS`, :data:`DECISION_MERGERS`; look-ups of
unknown names raise :class:`BadInput`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from engine.decision import Vote
from engine.errors import BadInput

Weighted = tuple[float, float]  # (distance, weight)
Ballot = tuple[Vote, float]  # (vote, weight)
Tier = Callable[[], Sequence[Ballot]]


# --------------------------------------------------------------------------- distances

def _checked(pairs: Sequence[Weighted]) -> list[Weighted]:
    pairs = [(float(d), float(w)) for d, w in pairs]
    if not pairs:
        raise BadInput("nothing to merge")
    if any(w < 0 for _, w in pairs):
        raise BadInput("negative weight")
    return pairs


def merge_max(pairs: Sequence[Weighted]) -> float:
    """The largest distance: every algorithm must agree that the pictures are close."""
    return max(d for d, _ in _checked(pairs))


def merge_min(pairs: Sequence[Weighted]) -> float:
    """The smallest distance: one algorithm finding the pictures close is enough."""
    return min(d for d, _ in _checked(pairs))


def merge_mean(pairs: Sequence[Weighted]) -> float:
    """Arithmetic mean, weights ignored."""
    pairs = _checked(pairs)
    return sum(d for d, _ in pairs) / len(pairs)


def merge_weighted_mean(pairs: Sequence[Weighted]) -> float:
    """Weighted arithmetic mean; all-zero weights fall back to the plain mean."""
    pairs = _checked(pairs)
    total = sum(w for _, w in pairs)
    if total == 0:
        return merge_mean(pairs)
    return sum(d * w for d, w in pairs) / total


def merge_harmonic_mean(pairs: Sequence[Weighted]) -> float:
    """Weighted harmonic mean ``sum(w) / sum(w / d)``.

    It leans towards the smallest distances. A zero distance with a positive
    weight makes the result 0: that is the limit of the formula as that
    distance goes to 0 (as ``scipy.stats.hmean`` defines it), i.e. an algorithm
    that sees identical features dominates. Only positive-weight entries count;
    all-zero weights fall back to equal weights. (douglas-quaid's merger
    returned 0 for every input; this one returns 0 only in that limit case.)
    """
    pairs = _checked(pairs)
    if sum(w for _, w in pairs) == 0:
        pairs = [(d, 1.0) for d, _ in pairs]
    pairs = [(d, w) for d, w in pairs if w > 0]
    if any(d <= 0 for d, _ in pairs):
        return 0.0
    return sum(w for _, w in pairs) / sum(w / d for d, w in pairs)


DISTANCE_MERGERS: dict[str, Callable[[Sequence[Weighted]], float]] = {
    "max": merge_max,
    "min": merge_min,
    "mean": merge_mean,
    "weighted_mean": merge_weighted_mean,
    "harmonic_mean": merge_harmonic_mean,
}


def distance_merger(name: str) -> Callable[[Sequence[Weighted]], float]:
    """The distance merger called ``name``; unknown names -> :class:`BadInput`."""
    try:
        return DISTANCE_MERGERS[name]
    except KeyError:
        raise BadInput(f"unknown distance merge {name!r}; known: {', '.join(DISTANCE_MERGERS)}") from None


# --------------------------------------------------------------------------- decisions

PARETO_SHARE = 0.8  # share of algorithms that must agree for the Pareto merger


def _all_ballots(tiers: Iterable[Tier]) -> list[Ballot]:
    ballots = [ballot for tier in tiers for ballot in tier()]
    if not ballots:
        raise BadInput("no votes to merge")
    return ballots


def plurality(ballots: Sequence[Ballot]) -> Vote:
    """The vote with the largest total weight; a tie for the top resolves to MAYBE."""
    totals = {vote: 0.0 for vote in Vote}
    for vote, weight in ballots:
        totals[vote] += weight
    best = max(totals.values())
    winners = [vote for vote, total in totals.items() if total == best]
    return winners[0] if len(winners) == 1 else Vote.MAYBE


def pareto(tiers: Iterable[Tier]) -> Vote:
    """The vote of at least 80 % of the algorithms (by count); otherwise MAYBE.

    Two votes cannot both reach 80 %, so there are no ties.
    """
    ballots = _all_ballots(tiers)
    for vote in Vote:
        if sum(1 for v, _ in ballots if v is vote) >= PARETO_SHARE * len(ballots):
            return vote
    return Vote.MAYBE


def majority(tiers: Iterable[Tier]) -> Vote:
    """The most frequent vote, one algorithm one vote; a tie for the top -> MAYBE."""
    return plurality([(vote, 1.0) for vote, _ in _all_ballots(tiers)])


def weighted_majority(tiers: Iterable[Tier]) -> Vote:
    """The vote with the largest summed weight; a tie for the top -> MAYBE."""
    return plurality(_all_ballots(tiers))


def pyramidal(tiers: Iterable[Tier]) -> Vote:
    """Cheap tiers first; a costly tier is computed only when the cheaper ones are unsure.

    A tier whose ballots are all NO decides NO at once: the bulk of a shortlist
    is clearly different pictures, and those never reach the costly verifier.
    Any other outcome is "unsure" and the next tier runs. The last tier that
    ran decides by weighted majority, so a verifier (ORB with alignment and
    content difference) overrules the global hashes both ways: it accepts a
    copy with an injected banner the hashes doubt, and vetoes another page of
    the same site that the hashes call identical (global hashes
    cannot tell pages sharing a template apart). With one tier this is the
    weighted majority of that tier.
    """
    decided: Vote | None = None
    for tier in tiers:
        ballots = tier()
        if not ballots:
            continue
        decided = plurality(ballots)
        if all(vote is Vote.NO for vote, _ in ballots):
            return Vote.NO
    if decided is None:
        raise BadInput("no votes to merge")
    return decided


DECISION_MERGERS: dict[str, Callable[[Iterable[Tier]], Vote]] = {
    "pareto": pareto,
    "majority": majority,
    "weighted_majority": weighted_majority,
    "pyramidal": pyramidal,
}


def decision_merger(name: str) -> Callable[[Iterable[Tier]], Vote]:
    """The decision merger called ``name``; unknown names -> :class:`BadInput`."""
    try:
        return DECISION_MERGERS[name]
    except KeyError:
        raise BadInput(f"unknown decision merge {name!r}; known: {', '.join(DECISION_MERGERS)}") from None

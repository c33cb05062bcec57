"""Extract all enabled features of a picture, and compare two feature sets into a Verdict.

CONTRACT (implemented here, used by core/store/service):

    matcher = Matcher(settings)
    matcher.algorithms                      # list of enabled Algorithm instances
    matcher.extract(picture) -> dict[str, bytes]        # every enabled algorithm, for storing
    matcher.query(picture) -> Query                  # query-side features (orientations, lazy costly ones)
    matcher.compare(query, stored: Mapping[str, bytes]) -> Verdict
    matcher.compare_shortlist(query, {id: stored}, prefetch=None) -> {id: Verdict}  # within the verify budget
    matcher.prefilter_codes(features: Mapping[str, bytes]) -> dict[str, bytes]  # packed-bit codes, index
    matcher.query_codes(query) -> dict[str, list[bytes]]  # the same codes of the query, every orientation

Why a Query object: query-side features are computed lazily, per algorithm and
once per search, so the pyramidal merger can leave a costly verifier's query
feature (ORB keypoints) uncomputed when every candidate is clearly rejected,
and each orientable algorithm extracts its eight orientations once, not once
per candidate. Thresholds and weights come from ``settings.algorithm(name)``,
falling back to each algorithm's class defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from engine import algorithms as registry
from engine.algorithms.base import COSTLY, Algorithm, Comparison
from engine.config import Settings
from engine.decision import VOTE_TO_DECISION, AlgorithmResult, Decision, Verdict, Vote, vote_for
from engine.errors import BadInput
from engine.merging import Ballot, decision_merger, distance_merger, plurality
from engine.picture import Picture

Prefetch = Callable[[Sequence[Mapping[str, bytes]], Sequence[str]], None]


CLOSER_MARGIN = 0.005  # verifier distance by which an accepted match may trail the closest one
CLOSER_MATCH = "closer-match"


def closest_accepted(verdicts: Mapping[str, Verdict], clusters: Mapping[str, int] | None = None,
                     own: str | None = None) -> dict[str, Verdict]:
    """Keep ``accepted`` for the closest accepted matches and their cluster; the others go to review.

    Why: a copy of one page is accepted against its original at a verifier
    distance of about 0, and can also fall under the accept threshold against a
    sibling page whose few differing words the verifier barely resolves (two
    API pages that differ in one function name: 0.01-0.07). Measured on a
    held-out evaluation set, the accepted matches that trail the closest one by
    more than CLOSER_MARGIN are almost all such siblings, so they are answered
    ``to-review`` with the reason ``closer-match``. Matches within the margin,
    and matches in the closest one's cluster (``clusters``: id -> cluster; the
    stored copies of one picture), stay accepted. ``own``: the query's own id
    when it is stored (it matches itself at 0 and says nothing about the others).
    """
    accepted = {ident: _verifier_distance(v) for ident, v in verdicts.items()
                if v.decision is Decision.ACCEPTED and ident != own}
    if len(accepted) < 2:
        return dict(verdicts)
    closest = min(accepted, key=lambda ident: (accepted[ident], ident))
    family = clusters.get(closest) if clusters else None

    def trails(ident: str) -> bool:
        if ident not in accepted or accepted[ident] <= accepted[closest] + CLOSER_MARGIN:
            return False
        return family is None or clusters.get(ident) != family

    return {ident: replace(v, decision=Decision.TO_REVIEW, reason=CLOSER_MATCH) if trails(ident) else v
            for ident, v in verdicts.items()}


def _verifier_distance(verdict: Verdict) -> float:
    """The costly verifier's distance when it ran (it sees what hashes cannot), else the merged one."""
    verifiers = [r.distance for name, r in verdict.algorithms.items() if name in _COSTLY_NAMES]
    return min(verifiers) if verifiers else verdict.distance


_COSTLY_NAMES = {cls.name for cls in registry.ALGORITHMS if cls.cost >= COSTLY}


def strongest(comparisons: Iterable[Comparison], yes: float, maybe: float) -> Comparison:
    """Of one pair's comparisons over the query's views (orientations, the page inside a frame): the
    one with the strongest vote, then the smallest distance.

    A reason caps a vote at MAYBE, so a view that aligns the whole page beats a closer view that
    also sees a rewritten region (a frame's title bar over a line of text): the smallest distance
    alone would keep the weaker vote.
    """
    def key(c: Comparison) -> tuple[int, float]:
        return VOTE_TO_DECISION[vote_for(c.distance, yes, maybe, c.reason)].rank, c.distance
    return min(comparisons, key=key)


def resolve_thresholds(settings: Settings, algorithm: Algorithm) -> tuple[float, float]:
    """(yes, maybe) thresholds of ``algorithm``: the settings' first, the class defaults otherwise."""
    conf = settings.algorithm(algorithm.name)
    yes = algorithm.yes_threshold if conf.yes is None else conf.yes
    maybe = algorithm.maybe_threshold if conf.maybe is None else conf.maybe
    return yes, max(yes, maybe)


class Query:
    """A picture being searched for; features are extracted on first use and cached."""

    def __init__(self, matcher: Matcher, picture: Picture) -> None:
        self.matcher = matcher
        self.picture = picture
        self._features: dict[str, list[bytes]] = {}

    def features(self, name: str) -> list[bytes]:
        """The query features of algorithm ``name``: one, or one per orientation."""
        if name not in self._features:
            algorithm = self.matcher.algorithm(name)
            orientations = self.matcher.settings.all_orientations
            self._features[name] = algorithm.query_features(self.picture, orientations)
        return self._features[name]

    @property
    def extracted(self) -> set[str]:
        """Names of the algorithms whose query features were computed so far."""
        return set(self._features)

    def stored_features(self) -> dict[str, bytes]:
        """Every enabled algorithm's feature of the picture as it is (for storing after a search)."""
        return {a.name: self.features(a.name)[0] for a in self.matcher.algorithms}


class Matcher:
    """The enabled algorithms with their thresholds, weights and merge strategy."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        unknown = set(self.settings.algorithms) - set(registry.BY_NAME)
        if unknown:
            raise BadInput(f"settings name unknown algorithm(s): {', '.join(sorted(unknown))}")
        self.algorithms: list[Algorithm] = [cls() for cls in registry.ALGORITHMS if self._enabled(cls)]
        if not self.algorithms:
            raise BadInput("no algorithm is enabled")
        if self.settings.verify_budget < 0:
            raise BadInput("verify_budget must be 0 (verify every candidate) or more")
        self._by_name = {a.name: a for a in self.algorithms}
        # Settings are frozen: resolve each algorithm's thresholds and weight once, not per candidate.
        self._thresholds = {a.name: resolve_thresholds(self.settings, a) for a in self.algorithms}
        self._weights = {a.name: self.settings.algorithm(a.name).weight for a in self.algorithms}
        self._merge_distance = distance_merger(self.settings.distance_merge)
        self._merge_decision = decision_merger(self.settings.decision_merge)

    def _enabled(self, cls: type[Algorithm]) -> bool:
        if cls.name in self.settings.algorithms:
            return self.settings.algorithms[cls.name].enabled
        return cls.enabled_by_default

    def algorithm(self, name: str) -> Algorithm:
        """The enabled algorithm called ``name``; others -> :class:`BadInput`."""
        try:
            return self._by_name[name]
        except KeyError:
            raise BadInput(f"algorithm {name!r} is not enabled") from None

    def thresholds(self, name: str) -> tuple[float, float]:
        """(yes, maybe) thresholds of ``name``: settings first, class defaults otherwise."""
        self.algorithm(name)  # unknown / disabled -> BadInput
        return self._thresholds[name]

    def weight(self, name: str) -> float:
        self.algorithm(name)
        return self._weights[name]

    # ------------------------------------------------------------------ extraction

    def extract(self, picture: Picture) -> dict[str, bytes]:
        """Every enabled algorithm's feature, for storing."""
        return {a.name: a.extract(picture) for a in self.algorithms}

    def query(self, picture: Picture) -> Query:
        return Query(self, picture)

    def prefilter_codes(self, features: Mapping[str, bytes]) -> dict[str, bytes]:
        """Packed-bit codes for the candidate index (the enabled ``prefilter`` algorithms present)."""
        codes: dict[str, bytes] = {}
        for algorithm in self._prefilter():
            if algorithm.name in features:
                codes.update(algorithm.codes(features[algorithm.name]))
        return codes

    def query_codes(self, query: Query) -> dict[str, list[bytes]]:
        """The query's codes for the candidate index: one per orientation when orientations are on,
        and a generator's own probes (region codes)."""
        codes: dict[str, list[bytes]] = {}
        for algorithm in self._prefilter():
            probes = algorithm.probes(query.picture)
            if probes is None:
                probes = {algorithm.name: [algorithm.code(f) for f in query.features(algorithm.name)]}
            codes.update(probes)
        return codes

    def _prefilter(self) -> list[Algorithm]:
        return [a for a in self.algorithms if a.prefilter and a.hamming_bits]

    # ------------------------------------------------------------------ comparison

    def score(self, query: Query, name: str, stored: bytes, settle: bool = False) -> AlgorithmResult:
        """One algorithm's result over the query's views (:func:`strongest`).

        ``settle``: only the vote must be exact; beyond the MAYBE threshold the
        distance may be a lower bound (:meth:`Algorithm.distance_within`).
        """
        algorithm = self.algorithm(name)
        yes, maybe = self._thresholds[name]
        features = query.features(name)
        bound = maybe if settle else None
        if len(features) == 1:  # the usual query (no orientations): ~50 x 5 calls a search
            best = algorithm.compare(features[0], stored, bound)
        else:
            best = strongest((algorithm.compare(f, stored, bound) for f in features), yes, maybe)
        distance = min(1.0, max(0.0, best.distance))
        vote = vote_for(distance, yes, maybe, best.reason)
        # a reason explains why a close pair is not accepted; on a rejected pair it would say nothing
        return AlgorithmResult(distance, vote, best.reason if vote is not Vote.NO else None)

    def compare(self, query: Query | Picture, stored: Mapping[str, bytes]) -> Verdict:
        """Compare a query with one stored picture's features.

        Algorithms whose stored feature is missing (stored before the algorithm
        was enabled) are skipped. Nothing comparable -> rejected at distance 1.
        """
        if isinstance(query, Picture):
            query = self.query(query)
        return self._compare(query, stored, settle=False)

    def _compare(self, query: Query, stored: Mapping[str, bytes], settle: bool) -> Verdict:
        results: dict[str, AlgorithmResult] = {}
        tiers = [self._tier(query, stored, group, results, settle) for group in self._tiers(stored)]
        if not tiers:
            return Verdict(1.0, Decision.REJECTED, {})
        return self._verdict(results, VOTE_TO_DECISION[self._merge_decision(tiers)])

    def compare_shortlist(self, query: Query, shortlist: Mapping[str, Mapping[str, bytes]],
                          prefetch: Prefetch | None = None) -> dict[str, Verdict]:
        """Compare a query with a whole shortlist, spending the costly verifier where it counts.

        With the pyramidal merge and ``settings.verify_budget`` > 0: the cheap tier
        runs on every candidate; then every candidate is ordered by the verifier's
        :meth:`~engine.algorithms.base.Algorithm.rank` (then cheap-unsure before
        cheap-rejected, then by the cheap distance) and verified in that order
        until ``verify_budget`` of them have been rejected. The rest are rejected
        unverified: their verdict lists the cheap algorithms only. Accepted and
        to-review candidates never use up the budget, so a stored cluster of many
        copies is verified whole. This bounds a search's verifier cost at
        (matches + budget) pairs instead of the whole shortlist.

        A candidate the cheap tier rejects outright is still ranked and may be
        verified: global hashes cannot see a page inside a browser frame, a
        scrolled or cropped capture or a full-page capture, which the region
        codes put on the shortlist and the verifier aligns. A verified
        candidate's decision is the verifier's (the last tier's vote), as the
        pyramidal merger decides whenever it reaches the verifier.
        Verified candidates the verifier rejects carry a lower bound of its
        distance (:meth:`Algorithm.distance_within`): every vote is exact.

        ``prefetch(features, names)`` is called once with the candidates about to
        be ranked and the costly algorithm names, so a store can fetch their large
        features in one round trip. Other mergers, or a budget of 0: every
        candidate is compared fully with :meth:`compare`.
        """
        budget = self.settings.verify_budget
        if budget <= 0 or self.settings.decision_merge != "pyramidal":
            return {ident: self.compare(query, features) for ident, features in shortlist.items()}
        verdicts: dict[str, Verdict] = {}
        ranked: list[tuple[str, Verdict, Algorithm]] = []  # id, its cheap verdict, its verifier
        for ident, features in shortlist.items():
            tiers = self._tiers(features)
            if not tiers or tiers[-1][0].cost < COSTLY:  # nothing costly to spare
                verdicts[ident] = self.compare(query, features)
                continue
            cheap_tier = tiers[0] if len(tiers) > 1 else []
            cheap = {a.name: self.score(query, a.name, features[a.name]) for a in cheap_tier}
            # the verdict of a candidate left unverified beyond the budget: the cheap results only
            cheap_verdict = self._verdict(cheap, Decision.REJECTED) if cheap else \
                Verdict(1.0, Decision.REJECTED, {})
            ranked.append((ident, cheap_verdict, tiers[-1][0]))
        if prefetch is not None and ranked:
            prefetch([shortlist[ident] for ident, _, _ in ranked], sorted({v.name for _, _, v in ranked}))
        order = sorted(ranked, key=lambda item: self._verify_order(query, shortlist[item[0]], *item))
        rejected = 0
        for ident, cheap_verdict, _ in order:
            if rejected >= budget:
                verdicts[ident] = cheap_verdict
                continue
            verdicts[ident] = self._verified(query, shortlist[ident])
            rejected += verdicts[ident].decision is Decision.REJECTED
        return {ident: verdicts[ident] for ident in shortlist}

    def _verified(self, query: Query, stored: Mapping[str, bytes]) -> Verdict:
        """Every tier scored; the decision is the last (costly) tier's weighted plurality."""
        results: dict[str, AlgorithmResult] = {}
        tiers = self._tiers(stored)
        ballots: list[Ballot] = []
        for group in tiers:
            ballots = self._tier(query, stored, group, results, settle=True)()
        return self._verdict(results, VOTE_TO_DECISION[plurality(ballots)])

    @staticmethod
    def _verify_order(query: Query, stored: Mapping[str, bytes], ident: str, cheap: Verdict,
                      verifier: Algorithm) -> tuple[float, bool, float, str]:
        """Sort key: the verifier's rank (highest first), cheap-unsure before cheap-rejected, then the
        cheap merged distance, then the id."""
        ranks = [verifier.rank(feature, stored[verifier.name]) for feature in query.features(verifier.name)]
        known = [r for r in ranks if r is not None]
        cheap_rejected = bool(cheap.algorithms) and all(r.vote is Vote.NO for r in cheap.algorithms.values())
        return (-max(known) if known else 0.0, cheap_rejected, cheap.distance, ident)

    def _verdict(self, results: dict[str, AlgorithmResult], decision: Decision) -> Verdict:
        """The merged verdict; an algorithm's reason (a verifier's "same-template") forbids accepted."""
        distance = self._merge_distance([(r.distance, self._weights[n]) for n, r in results.items()])
        reason = next((r.reason for r in results.values() if r.reason), None)
        if reason and decision is Decision.ACCEPTED:
            decision = Decision.TO_REVIEW
        return Verdict(distance, decision, results, reason if decision is not Decision.REJECTED else None)

    def _tiers(self, stored: Mapping[str, bytes]) -> list[list[Algorithm]]:
        """Cheap algorithms, then costly verifiers (``cost >= COSTLY``); empty tiers dropped."""
        present = [a for a in self.algorithms if a.name in stored and a.votes]
        cheap = [a for a in present if a.cost < COSTLY]
        costly = sorted((a for a in present if a.cost >= COSTLY), key=lambda a: a.cost)
        return [tier for tier in (cheap, costly) if tier]

    def _tier(self, query: Query, stored: Mapping[str, bytes], group: list[Algorithm],
              results: dict[str, AlgorithmResult], settle: bool):
        def run() -> list[Ballot]:
            for algorithm in group:
                results[algorithm.name] = self.score(query, algorithm.name, stored[algorithm.name],
                                                     settle and algorithm.cost >= COSTLY)
            return [(results[a.name].vote, self._weights[a.name]) for a in group]
        return run

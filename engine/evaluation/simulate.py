"""The merged decision replayed from a distance table, with quaid's own merging code.

Why: calibration tries many merge strategies, weights and thresholds; going
through the search path for each would extract every feature again. Here
:class:`TableMatcher` is the real :class:`engine.matching.Matcher` (same
tiers, same pyramidal laziness, same mergers) whose per-algorithm distances
are looked up in the table instead of being computed. Candidates are chosen
like the index does (:meth:`engine.index.Index.shortlist`): the ``shortlist``
nearest references by the smallest prefilter-code distance. A costly
verifier is known only on the table's verifier shortlist
(:data:`engine.evaluation.features.SHORTLIST`); candidates outside it are
left out, which matters little because they are far by every cheap hash.
A verifier's reason (``same-template``) is replayed too: it keeps a pair out
of accepted as on the search path. The search path's verification budget (``verify_budget``) is not replayed:
the simulation verifies every unsure candidate. The final figures always come from the real search path
(:mod:`engine.evaluation.search_run`).
"""

from __future__ import annotations

import numpy as np

from engine.algorithms.base import COSTLY
from engine.config import Settings
from engine.decision import AlgorithmResult, Decision, vote_for
from engine.evaluation.features import DistanceTable
from engine.evaluation.metrics import Flags
from engine.matching import Matcher


class TableMatcher(Matcher):
    """A Matcher whose ``score`` reads ``table`` at (query index, reference index)."""

    def __init__(self, settings: Settings, table: DistanceTable) -> None:
        super().__init__(settings)
        self.table = table

    def score(self, query, name: str, stored: bytes, settle: bool = False) -> AlgorithmResult:  # type: ignore[override]
        i, j = query  # the table holds exact distances: ``settle`` changes nothing
        distance = float(self.table.distances[name][i, j])
        vote = vote_for(distance, *self.thresholds(name))
        return AlgorithmResult(distance, vote, self.table.reason(name, i, j))


def candidates(table: DistanceTable, matcher: Matcher) -> list[list[int]]:
    """Per query, the reference indices the index would shortlist and the table can score."""
    # the table holds whole-picture distances: region codes' probes are simulated by nothing here
    prefilter = [a.name for a in matcher.algorithms if a.prefilter and a.hamming_bits and a.votes]
    costly = [a.name for a in matcher.algorithms if a.cost >= COSTLY]
    n_queries, n_refs = len(table.queries), len(table.references)
    if prefilter:
        near = np.min([table.distances[n] for n in prefilter], axis=0)
        order = np.argsort(near, axis=1, kind="stable")[:, : matcher.settings.shortlist]
    else:
        order = np.tile(np.arange(n_refs), (n_queries, 1))
    known = np.ones((n_queries, n_refs), dtype=bool)
    for name in costly:
        known &= ~np.isnan(table.distances[name])
    return [[int(j) for j in row if known[i, j]] for i, row in enumerate(order)]


def simulate(table: DistanceTable, settings: Settings, shortlists: list[list[int]] | None = None) -> Flags:
    """Per-query flags of the merged decision under ``settings``."""
    matcher = TableMatcher(settings, table)
    names = [a.name for a in matcher.algorithms if a.votes]
    missing = [n for n in names if n not in table.distances]
    if missing:
        raise ValueError(f"distance table lacks {', '.join(missing)}")
    shortlists = shortlists if shortlists is not None else candidates(table, matcher)
    n = len(table.queries)
    accepted_right, found, wrong, accepted, review = (np.zeros(n, dtype=bool) for _ in range(5))
    for i, refs in enumerate(shortlists):
        verdicts = []
        for j in refs:
            verdict = matcher.compare((i, j), dict.fromkeys(names, b""))
            verdicts.append((verdict.decision.rank, verdict.distance, j, verdict.decision))
        verdicts.sort()
        true = int(table.truth[i])
        best = verdicts[0] if verdicts else (2, 1.0, -1, Decision.REJECTED)
        accepted[i] = best[3] is Decision.ACCEPTED
        review[i] = best[3] is Decision.TO_REVIEW
        accepted_right[i] = accepted[i] and best[2] == true
        wrong[i] = accepted[i] and best[2] != true
        found[i] = true >= 0 and any(j == true and rank <= 1 for rank, _, j, _ in verdicts)
    return Flags(accepted_right, found, wrong, accepted, review)

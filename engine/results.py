"""What the facade answers: an add (:class:`AddResult`), a search (:class:`SearchResult`) and
its matches (:class:`Match`), as Python values with the JSON the API and the CLI give them.

Kept apart from :mod:`engine.core` (which computes them) so the answer's shape, which clients
and connectors read, is in one short place: a match may carry its brand check
(:mod:`engine.brands`) and noise mark (:mod:`engine.noise`), a search the domains it was judged
on and why it is noise, each only when it applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.brands import BrandCheck, query_fields
from engine.decision import Decision, Verdict
from engine.noise import Noise

if TYPE_CHECKING:
    from engine.matching import Query


@dataclass(frozen=True)
class AddResult:
    id: str
    name: str
    status: str  # "added" | "duplicate"
    cluster: int
    noise: Noise | None = None  # the picture is in the noise bank, and why

    def to_json(self) -> dict:
        answer = {"id": self.id, "name": self.name, "status": self.status, "cluster": self.cluster}
        if self.noise is not None:
            answer["noise"] = self.noise.to_json()
        return answer


@dataclass(frozen=True)
class Match:
    """A stored picture compared with the query."""

    id: str
    name: str
    cluster: int
    tags: tuple[str, ...]
    verdict: Verdict
    reference: Mapping = field(default_factory=dict, compare=False)  # the stored record's metadata
    brand: BrandCheck | None = None  # when the stored picture is a brand baseline
    noise: Noise | None = None  # the stored picture is in the noise bank (never reported)

    @property
    def distance(self) -> float:
        return self.verdict.distance

    @property
    def decision(self) -> Decision:
        return self.verdict.decision

    def to_json(self) -> dict:
        """The match as the API answers it; ``reason`` only when the verdict gives one."""
        verdict = self.verdict.to_json()
        answer = {"id": self.id, "name": self.name, "distance": verdict["distance"],
                  "decision": verdict["decision"], "cluster": self.cluster, "tags": list(self.tags),
                  "algorithms": verdict["algorithms"]}
        if "reason" in verdict:
            answer["reason"] = verdict["reason"]
        if self.brand is not None:
            answer["brand"] = self.brand.to_json()
            if self.brand.verdict:
                answer["verdict"] = self.brand.verdict
        return answer


@dataclass(frozen=True)
class SearchResult:
    decision: Decision
    matches: list[Match] = field(default_factory=list)
    domains: tuple[str, ...] = ()  # the registrable domains the query was seen on, when named
    query: Query | None = field(default=None, compare=False, repr=False)  # its extracted features
    noise: Noise | None = None  # the query is noise, and why (engine.noise)

    def to_json(self) -> dict:
        """The search as the API answers it; ``domains``, ``brand`` and ``verdict`` only when
        known (the best match that has a brand verdict speaks for the query), ``noise`` only
        when the query is noise."""
        answer = {"decision": self.decision.value, "matches": [m.to_json() for m in self.matches]}
        answer.update(query_fields(self.domains, ((m.id, m.brand) for m in self.matches)))
        if self.noise is not None:
            answer["noise"] = self.noise.to_json()
        return answer


def event_match(match: Match) -> dict:
    """An earlier picture as a match event names it (:mod:`engine.store.match_events`)."""
    answer = {"id": match.id, "name": match.name, "decision": match.decision.value,
              "distance": round(match.distance, 6)}
    if match.verdict.reason:
        answer["reason"] = match.verdict.reason
    return answer

"""Per-algorithm votes and the merged answer (value objects only).

The merging strategies themselves live in :mod:`engine.merging`. A comparison
of two pictures yields one :class:`Vote` per algorithm that ran and one
:class:`Verdict` that MISP and AIL automate on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Vote(StrEnum):
    """One algorithm's opinion."""

    YES = "yes"
    MAYBE = "maybe"
    NO = "no"


class Decision(StrEnum):
    """The answer clients automate on."""

    ACCEPTED = "accepted"
    TO_REVIEW = "to-review"
    REJECTED = "rejected"

    @property
    def rank(self) -> int:
        """0 = best (accepted); used to pick the best decision among matches."""
        return {"accepted": 0, "to-review": 1, "rejected": 2}[self.value]


VOTE_TO_DECISION = {Vote.YES: Decision.ACCEPTED, Vote.MAYBE: Decision.TO_REVIEW, Vote.NO: Decision.REJECTED}


@dataclass(frozen=True)
class AlgorithmResult:
    """One algorithm's distance (0 = identical, 1 = unrelated), vote, and why it withheld a YES."""

    distance: float
    vote: Vote
    reason: str | None = None

    def to_json(self) -> dict:
        answer = {"distance": round(self.distance, 6), "decision": self.vote.value}
        if self.reason:
            answer["reason"] = self.reason
        return answer


def vote_for(distance: float, yes_threshold: float, maybe_threshold: float,
             reason: str | None = None) -> Vote:
    """distance <= yes -> YES, <= maybe -> MAYBE, else NO; a ``reason`` turns a YES into a MAYBE."""
    if distance <= yes_threshold:
        return Vote.MAYBE if reason else Vote.YES
    if distance <= maybe_threshold:
        return Vote.MAYBE
    return Vote.NO


@dataclass(frozen=True)
class Verdict:
    """The merged answer for one pair of pictures, with every algorithm's own result."""

    distance: float
    decision: Decision
    algorithms: dict[str, AlgorithmResult] = field(default_factory=dict)
    reason: str | None = None  # why it is not accepted, e.g. "same-template" (same site, other content)

    def to_json(self) -> dict:
        answer = {
            "distance": round(self.distance, 6),
            "decision": self.decision.value,
            "algorithms": {name: r.to_json() for name, r in self.algorithms.items()},
        }
        if self.reason:
            answer["reason"] = self.reason
        return answer

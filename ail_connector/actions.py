"""Turn quaid's answer for one AIL picture into AIL actions: tags and correlations.

Why these tags: see :mod:`ail_connector.tags` (AIL knows taxonomy values and custom tags,
and no taxonomy has a "similar picture" value). By default:

* **accepted** match → ``quaid:picture="similar"`` on the new object, and an AIL
  correlation between the two objects where AIL shows such correlations;
* **to-review** match → ``quaid:picture="possibly-similar"`` and ``workflow:todo="review"``;
  a correlation only if :attr:`Policy.correlate_to_review`;
* **rejected** → nothing;
* a kept match that quaid answers ``phishing-suspected`` (a brand's baseline, and the
  object was crawled on a domain that is not the brand's) adds ``phishing:techniques=
  "fake-website"`` (:attr:`Policy.phishing_tags`).
* a picture quaid answers as **noise** (a blank, error, challenge or placeholder page, or a
  copy of a picture in quaid's noise bank) → nothing either: such pictures look alike
  whatever site they come from, so neither a tag nor a correlation would mean anything.

Matches are skipped when they are not AIL objects (pictures indexed from MISP, say —
they still count for the tag), when they are the object itself, or when their tags are
not safe to spread (AIL's ``is_tags_safe``: the connector never links new objects to
child-exploitation or violence content through a similarity edge).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Optional

from quaid_client import BadAnswer

from ail_connector.ail_objects import AILRef
from ail_connector.tags import DEFAULT_ACCEPTED_TAGS, DEFAULT_PHISHING_TAGS, DEFAULT_REVIEW_TAGS

ACCEPTED = "accepted"
TO_REVIEW = "to-review"
REJECTED = "rejected"
PHISHING_SUSPECTED = "phishing-suspected"
_RANK = {ACCEPTED: 0, TO_REVIEW: 1, REJECTED: 2}


@dataclass(frozen=True)
class Policy:
    """What to do for each decision; read from the ``[Quaid]`` section by :mod:`ail_connector.config`."""

    accepted_tags: tuple[str, ...] = DEFAULT_ACCEPTED_TAGS
    review_tags: tuple[str, ...] = DEFAULT_REVIEW_TAGS
    phishing_tags: tuple[str, ...] = DEFAULT_PHISHING_TAGS
    correlate_accepted: bool = True
    correlate_to_review: bool = False
    max_correlations: int = 10  # per new object: a popular template must not flood the graph
    top: int = 10  # matches asked from the service


@dataclass(frozen=True)
class Correlation:
    """An AIL correlation to record between ``source`` and ``target``."""

    source: AILRef
    target: AILRef
    decision: str
    distance: float


@dataclass(frozen=True)
class Plan:
    """Everything the AIL side should do for one new picture."""

    subject: AILRef
    decision: str  # best decision among the kept matches, "rejected" when none
    tags: tuple[str, ...] = ()
    correlations: tuple[Correlation, ...] = ()
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (match id, reason)
    brand: str = ""  # the brand whose baseline a kept match is, on another domain (phishing-suspected)
    noise: str = ""  # why quaid answered the picture as noise (then no tags, no correlations)


Resolver = Callable[[str], Optional[AILRef]]
SafetyCheck = Callable[[AILRef], bool]


def plan_actions(subject: AILRef, answer: Mapping, policy: Policy, resolve: Resolver,
                 is_safe: SafetyCheck) -> Plan:
    """The tags and correlations for ``subject`` given a service search ``answer``.

    ``resolve`` maps a quaid picture id to the AIL object holding those bytes (or ``None``);
    ``is_safe`` tells whether that object's tags may be spread.
    """
    correlations: list[Correlation] = []
    skipped: list[tuple[str, str]] = []
    best = REJECTED
    matches = checked_matches(answer)
    noise = answer.get("noise")
    if isinstance(noise, Mapping):
        return Plan(subject, REJECTED, noise=str(noise.get("reason") or "noise"))
    brand = ""
    for match in matches:
        match_id, decision = str(match.get("id", "")), str(match.get("decision", REJECTED))
        if decision not in _RANK or decision == REJECTED:
            continue
        if match_id == subject.id:
            continue  # the picture itself, stored by the add before the search
        target = resolve(match_id)
        if target is not None and target == subject:
            continue
        if target is not None and not is_safe(target):
            skipped.append((match_id, "unsafe tags"))
            continue
        best = min(best, decision, key=_RANK.__getitem__)
        if match.get("verdict") == PHISHING_SUSPECTED and not brand:
            brand = str((match.get("brand") or {}).get("name") or "?")
        if target is None:
            skipped.append((match_id, "not an AIL object"))
        elif wants_correlation(decision, policy):
            if len(correlations) < policy.max_correlations:
                correlations.append(Correlation(subject, target, decision, float(match.get("distance", 0.0))))
            else:
                skipped.append((match_id, "correlation limit"))
    tags = policy.accepted_tags if best == ACCEPTED else policy.review_tags if best == TO_REVIEW else ()
    if brand:
        tags = tuple(tags) + tuple(t for t in policy.phishing_tags if t not in tags)
    return Plan(subject, best, tuple(tags), tuple(correlations), tuple(skipped), brand)


def checked_matches(answer: Mapping) -> list:
    """The answer's matches if they have the documented shape, else :class:`BadAnswer`: a proxy
    or another service answering in quaid's place must not become tags or correlations."""
    matches = answer.get("matches") or []
    if not isinstance(matches, list):
        raise BadAnswer("search answer: 'matches' is not a list")
    for match in matches:
        distance = match.get("distance", 0.0) if isinstance(match, dict) else None
        if not (isinstance(match, dict) and isinstance(match.get("id", ""), str)
                and isinstance(match.get("decision", ""), str)
                and isinstance(distance, (int, float)) and not isinstance(distance, bool)):
            raise BadAnswer("search answer: a match without a string id and decision and a numeric distance")
    return matches


def wants_correlation(decision: str, policy: Policy) -> bool:
    if decision == ACCEPTED:
        return policy.correlate_accepted
    return decision == TO_REVIEW and policy.correlate_to_review

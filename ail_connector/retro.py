"""Retroactive matches: earlier AIL pictures learn that a picture added later matches them.

Why: a screenshot crawled last month is tagged when it is sent to quaid, against what quaid
knew then. A reference added to quaid today (by an analyst, from MISP, from another AIL
instance) that matches it is news for that screenshot. quaid announces every picture added
with the earlier pictures it matched (``GET /api/v1/events``, :mod:`quaid_client.follow`);
:func:`plan_retro` turns one such event into one :class:`~ail_connector.actions.Plan` per
earlier AIL object, under the same policy as a new object's plan:

* the earlier object gets the decision's tags (``quaid:picture="similar"`` when accepted,
  ``quaid:picture="possibly-similar"`` and ``workflow:todo="review"`` when to review);
* a correlation with the new picture when it is an AIL object too and the policy correlates
  that decision (AIL shows it only where ``correlations_engine.py`` lists the pair);
* nothing around unsafe content: an earlier object whose tags are not safe to spread
  (AIL's ``is_tags_safe``) is left alone, and when the new picture is such an object no
  earlier object is tagged or linked because of it.

Plans are idempotent in AIL (tags and correlations are sets), so an event handled twice
changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from ail_connector.actions import (
    ACCEPTED,
    REJECTED,
    TO_REVIEW,
    Correlation,
    Plan,
    Policy,
    Resolver,
    SafetyCheck,
    checked_matches,
    wants_correlation,
)


def plan_retro(event: Mapping, policy: Policy, resolve: Resolver, is_safe: SafetyCheck) -> list[Plan]:
    """One plan per earlier AIL object the event's new picture matched (accepted or to-review)."""
    new = resolve(str(event.get("id", "")))
    if new is not None and not is_safe(new):
        return []
    plans = []
    for match in checked_matches(event):
        decision = str(match.get("decision", REJECTED))
        earlier = resolve(str(match.get("id", "")))
        if decision not in (ACCEPTED, TO_REVIEW) or earlier is None or earlier == new or not is_safe(earlier):
            continue
        tags = policy.accepted_tags if decision == ACCEPTED else policy.review_tags
        correlations: tuple[Correlation, ...] = ()
        if new is not None and wants_correlation(decision, policy):
            correlations = (Correlation(earlier, new, decision, float(match.get("distance", 0.0))),)
        plans.append(Plan(earlier, decision, tuple(tags), correlations))
    return plans

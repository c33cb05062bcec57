"""One AIL picture in, a :class:`~ail_connector.actions.Plan` out: skip, add, search, decide.

This is the whole connector logic, with no AIL import, so it is tested against a real
quaid service without an AIL instance. The AIL module (``ail_module/QuaidImages.py``)
only reads bytes and tags from AIL objects and carries the plan out through AIL's API.

Order of the service calls: *add*, then *search*. Adding first makes the index the same
whatever order objects arrive in (a screenshot crawled later can still find an earlier
one and vice versa on a re-run), and adding is idempotent since ids are SHA-256 of the
bytes; the search then filters out the picture itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from quaid_client import QuaidClient

from ail_connector.actions import Plan, Policy, Resolver, SafetyCheck, plan_actions
from ail_connector.ail_objects import (
    PICTURE_TYPES,
    PLACEHOLDER_SCREENSHOTS,
    SCREENSHOT,
    AILRef,
    is_gif,
    is_tags_safe,
    sha256_hex,
)

log = logging.getLogger("quaid.ail")


@dataclass(frozen=True)
class Outcome:
    """What happened to one object: ``skipped`` (with ``reason``) or ``processed`` (with ``plan``)."""

    subject: AILRef
    status: str
    reason: str = ""
    plan: Plan | None = None
    added: str = ""  # "added" | "duplicate" when sent to the service


def skip_reason(subject: AILRef, data: bytes, tags: Iterable[str] = (), tags_safe: bool | None = None) -> str:
    """Why AIL's own image modules would not look at this object, or ``""`` to go on.

    ``tags_safe`` is AIL's own answer when the caller runs inside AIL (its unsafe-tag set
    includes the installed COPINE taxonomy); otherwise the mirror in ``ail_objects`` is used.
    Unsafe objects are never sent: quaid keeps thumbnails and shows them in its web UI.
    """
    if subject.type not in PICTURE_TYPES:
        return f"not a picture object ({subject.type})"
    if not data:
        return "empty file"
    if is_gif(data):
        return "GIF"
    if subject.type == SCREENSHOT and subject.id in PLACEHOLDER_SCREENSHOTS:
        return "placeholder screenshot"
    safe = is_tags_safe(tags) if tags_safe is None else tags_safe
    if not safe:
        return "unsafe tags"
    return ""


class Correlator:
    """Runs one object through the service and plans the AIL actions."""

    def __init__(self, service: QuaidClient, policy: Policy, resolve: Resolver,
                 is_safe: SafetyCheck) -> None:
        self.service = service
        self.policy = policy
        self.resolve = resolve
        self.is_safe = is_safe

    def process(self, subject: AILRef, data: bytes, tags: Iterable[str] = (),
                tags_safe: bool | None = None, domain: str | None = None) -> Outcome:
        """Skip, or add + search + plan. Raises :class:`quaid_client.ServiceError`. ``domain``:
        where the crawler found the picture, so a brand's look elsewhere is phishing-suspected."""
        reason = skip_reason(subject, data, tags, tags_safe)
        if reason:
            log.debug("skip %s: %s", subject.global_id, reason)
            return Outcome(subject, "skipped", reason=reason)
        if sha256_hex(data) != subject.id:
            log.warning("%s: file bytes do not hash to the object id", subject.global_id)
        added = self.service.add(data, name=subject.global_id, tags=[f"ail:{subject.type}"],
                                 metadata={"ail_global_id": subject.global_id})
        answer = self.service.search(data, top=self.policy.top + 1, name=subject.global_id,  # +1: itself
                                     domain=domain)
        self_id = str(added.get("id", ""))
        answer = {**answer, "matches": [m for m in answer.get("matches") or [] if m.get("id") != self_id]}
        plan = plan_actions(subject, answer, self.policy, self.resolve, self.is_safe)
        return Outcome(subject, "processed", plan=plan, added=str(added.get("status", "")))

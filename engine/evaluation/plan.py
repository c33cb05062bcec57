"""Which page plays which role in the evaluation set: reference, negative, sibling, distractor.

Where to start: :func:`plan_pages`. Every role is spread over the sites by
their weights, capped by how many pages a site has (what a small site cannot
give goes to the others). Template siblings (neighbouring pages of one family,
:func:`engine.evaluation.sources.sibling_pairs`) are taken first: in some
pairs one page is stored and the other is an unseen negative, in the others
both are stored. Web applications offer their login, register and
password-reset pages alternately to references and negatives, so that the
login page of one application is a negative for the login pages of others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

from engine.evaluation import sources


@dataclass(frozen=True)
class Pick:
    """One page and its role; ``sibling_of`` names the stored page it is a template sibling of."""

    id: str
    site: sources.Site
    page: Path
    role: str  # reference | negative | distractor
    kind: str  # original | unseen-page | unseen-app-page | sibling | distractor
    sibling_of: str | None = None
    full_page: bool = False  # a reference stored as a full-page capture
    synthetic_sibling: bool = False  # a reference that also yields a synthetic sibling negative


@dataclass
class Plan:
    references: list[Pick] = field(default_factory=list)
    negatives: list[Pick] = field(default_factory=list)
    distractors: list[Pick] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.references) + len(self.negatives) + len(self.distractors)


def plan_pages(size, seed: int, sites: tuple[sources.Site, ...]) -> Plan:
    """The pages of every role for a :class:`engine.evaluation.dataset.Size`, reproducible from ``seed``."""
    available = [s for s in sites if sources.site_pages(s)]
    pools = {s.name: sources.shuffled_pages(s, seed) for s in available}
    used: set[Path] = set()
    plan = Plan()
    counters: dict[str, int] = {}

    def new_id(site: sources.Site, prefix: str) -> str:
        key = f"{site.name}-{prefix}"
        counters[key] = counters.get(key, 0) + 1
        return f"{site.name}-{prefix}{counters[key] - 1:04d}"

    _plan_siblings(plan, size, seed, available, used, new_id)
    for role, count in (("reference", size.pages), ("negative", size.page_negatives),
                        ("distractor", size.distractors)):
        free = {s.name: [p for p in _preferred(s, pools[s.name], role) if p not in used] for s in available}
        quota = allocate(count, {s.name: s.weight for s in available}, {k: len(v) for k, v in free.items()})
        for site in available:
            for page in free[site.name][: quota[site.name]]:
                used.add(page)
                _add(plan, _pick(site, page, role, new_id))
    _flag_references(plan, size)
    return plan


def _plan_siblings(plan: Plan, size, seed: int, available: list, used: set, new_id) -> None:
    wanted = size.siblings + size.sibling_references
    pairs = {s.name: sources.sibling_pairs(s, seed) for s in available}
    with_pairs = [s for s in available if pairs[s.name]]
    quota = allocate(wanted, {s.name: s.weight for s in with_pairs},
                     {s.name: len(pairs[s.name]) for s in with_pairs})
    per_site = [[(s, a, b) for a, b in pairs[s.name][: quota[s.name]]] for s in with_pairs]
    chosen = [pair for row in zip_longest(*per_site) for pair in row if pair is not None]
    for number, (site, first, second) in enumerate(chosen):
        stored = Pick(new_id(site, ""), site, first, "reference", "original")
        used.update((first, second))
        if number < size.siblings:
            plan.references.append(stored)
            plan.negatives.append(Pick(new_id(site, "s"), site, second, "negative", "sibling",
                                       sibling_of=stored.id))
        else:
            other_id = new_id(site, "")
            plan.references += [Pick(stored.id, site, first, "reference", "original", sibling_of=other_id),
                                Pick(other_id, site, second, "reference", "original", sibling_of=stored.id)]


def _pick(site: sources.Site, page: Path, role: str, new_id) -> Pick:
    if role == "reference":
        return Pick(new_id(site, ""), site, page, role, "original")
    if role == "negative":
        return Pick(new_id(site, "n"), site, page, role, "unseen-app-page" if site.app else "unseen-page")
    return Pick(new_id(site, "d"), site, page, role, "distractor")


def _add(plan: Plan, pick: Pick) -> None:
    roles = {"reference": plan.references, "negative": plan.negatives, "distractor": plan.distractors}
    roles[pick.role].append(pick)


def _preferred(site: sources.Site, pages: list[Path], role: str) -> list[Path]:
    """Pages in the order ``role`` takes them: app pages alternate between references and negatives."""
    if not site.first:
        return pages
    wanted = re.compile(site.first, re.IGNORECASE)
    special = [p for p in pages if wanted.search(p.stem)]
    others = [p for p in pages if not wanted.search(p.stem)]
    if role == "reference":
        return special[0::2] + others + special[1::2]
    if role == "negative":
        return special[1::2] + others + special[0::2]
    return others + special


def _flag_references(plan: Plan, size) -> None:
    """Mark references for a synthetic sibling and for full-page storage, round-robin over the sites."""
    by_site: dict[str, list[int]] = {}
    for index, pick in enumerate(plan.references):
        if not pick.site.app and pick.sibling_of is None:
            by_site.setdefault(pick.site.name, []).append(index)
    order = [i for row in zip_longest(*by_site.values()) for i in row if i is not None]
    synthetic = set(order[: size.synthetic_siblings])
    full_page = set(order[size.synthetic_siblings: size.synthetic_siblings + size.full_page_references])
    plan.references[:] = [
        Pick(**{**p.__dict__, "synthetic_sibling": i in synthetic, "full_page": i in full_page})
        for i, p in enumerate(plan.references)
    ]


def allocate(count: int, weights: dict[str, float], capacity: dict[str, int]) -> dict[str, int]:
    """Split ``count`` over the keys by weight, none past its capacity (the rest goes to the others)."""
    quota = {k: 0 for k in weights}
    left = count
    open_keys = [k for k in weights if capacity[k] > 0 and weights[k] > 0]
    while left > 0 and open_keys:
        total = sum(weights[k] for k in open_keys)
        given = 0
        for key in sorted(open_keys, key=lambda k: -weights[k]):
            share = max(1, round(left * weights[key] / total))
            n = min(capacity[key] - quota[key], share, left - given)
            quota[key] += n
            given += n
            if given >= left:
                break
        left -= given
        open_keys = [k for k in open_keys if quota[k] < capacity[k]]
    return quota

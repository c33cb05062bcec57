"""Held out by site: which part of a dataset a calibration or an evaluation uses.

Pages of one site share a template, so a figure measured on the sites the defaults were
calibrated on says little about a user's own pictures. ``quaid calibrate --sites a,b`` tunes on
those sites only (references, copies and negatives); ``quaid evaluate --sites c,d`` (or
``--exclude-sites a,b``) sends only the queries of the other sites, while every reference stays
stored — a user's store holds pages of every site, and they are distractors for the queries.

Distractors (role ``distractor``: stored pages that no query is a copy of) are always stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from engine.errors import BadInput
from engine.evaluation.manifest import Entry

STORED_ROLES = ("reference", "distractor")


@dataclass(frozen=True)
class SiteChoice:
    """Sites to keep (``None``: all) and to leave out."""

    include: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, include: str | None, exclude: str | None) -> SiteChoice:
        """From the command line's comma-separated lists."""
        return cls(_names(include) if include else None, _names(exclude) if exclude else frozenset())

    def keeps(self, site: str) -> bool:
        return (self.include is None or site in self.include) and site not in self.exclude

    def check(self, entries: Iterable[Entry]) -> None:
        """Refuse site names the dataset does not have (a typo would silently select nothing)."""
        known = {e.site for e in entries}
        unknown = sorted(((self.include or frozenset()) | self.exclude) - known)
        if unknown:
            raise BadInput(f"no site {', '.join(unknown)} in this dataset; "
                           f"its sites: {', '.join(sorted(known))}")

    def to_json(self) -> dict:
        return {"include": sorted(self.include) if self.include is not None else None,
                "exclude": sorted(self.exclude)}


def _names(text: str) -> frozenset[str]:
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise BadInput(f"no site named in {text!r}")
    return names


def as_stored(entries: Iterable[Entry]) -> list[Entry]:
    """Distractors become references no query points to (stored, never the right answer)."""
    return [replace(e, role="reference") if e.role == "distractor" else e for e in entries]


def for_evaluation(entries: list[Entry], choice: SiteChoice) -> list[Entry]:
    """Queries (copies, negatives) of the chosen sites; every stored picture of every site."""
    choice.check(entries)
    return as_stored(e for e in entries if e.role in STORED_ROLES or choice.keeps(e.site))


def for_calibration(entries: list[Entry], choice: SiteChoice) -> list[Entry]:
    """Everything of the chosen sites only: no picture of a held-out site may shape the defaults."""
    choice.check(entries)
    return as_stored(e for e in entries if choice.keeps(e.site))


def covered(entries: Iterable[Entry]) -> dict:
    """The sites a report's queries and its stored pictures come from."""
    entries = list(entries)
    return {"queries": sorted({e.site for e in entries if e.role in ("variant", "negative")}),
            "stored": sorted({e.site for e in entries if e.role in STORED_ROLES})}

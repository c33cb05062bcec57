"""What the write-back may write, and to whom it may show it.

A match between a picture of event B (written into) and a picture of event A (named in B)
tells B's audience that A exists, where it is and what its file is called. MISP shares
what is written with the audience of its distribution level, so everything written into
B gets the narrowest of: the administrator's ceiling, A's distribution and B's. Levels,
as MISP defines them (``app/Model/MispAttribute.php``, ``distributionLevels``): 0 your
organisation only, 1 this community only, 2 connected communities, 3 all communities,
4 a sharing group, 5 inherit the event's. A sharing group is not ordered against the
others: two events of the same sharing group keep it, anything else involving one falls
back to "your organisation only".
"""

from __future__ import annotations

from dataclasses import dataclass

ORG_ONLY, COMMUNITY, CONNECTED, ALL_COMMUNITIES, SHARING_GROUP, INHERIT = range(6)
LEVEL_NAMES = {
    ORG_ONLY: "your organisation only",
    COMMUNITY: "this community only",
    CONNECTED: "connected communities",
    ALL_COMMUNITIES: "all communities",
}


@dataclass(frozen=True)
class Sharing:
    """A distribution level, with the sharing group id when the level is 4."""

    distribution: int
    sharing_group_id: str = "0"


@dataclass(frozen=True)
class WritePolicy:
    """The administrator's choices (command-line options of ``quaid misp-sync``)."""

    distribution: int = ORG_ONLY  # ceiling for anything written (0-3)
    tag_only: bool = False  # decision tags only: nothing in B names A
    republish: bool = False  # publish again the events that were published before the writes
    other_orgs: bool = False  # also write into events created by other organisations
    global_tags: bool = False  # global tags (synced, unpublish the event) instead of local ones
    attach_diff: bool = False  # the visual difference of the pair as an attachment of each stand-in object


def event_sharing(event) -> Sharing:
    """The sharing of a MISP event (a PyMISP ``MISPEvent`` or MISP's JSON dict)."""
    get = event.get if isinstance(event, dict) else lambda key, default=None: getattr(event, key, default)
    level = int(get("distribution", ORG_ONLY) or ORG_ONLY)
    group = str(get("sharing_group_id", "0") or "0")
    return Sharing(level, group if level == SHARING_GROUP else "0")


def narrowest(ceiling: int, *events) -> Sharing:
    """The widest sharing that no more than every one of ``events`` and ``ceiling`` allows."""
    levels = [event_sharing(event) for event in events]
    groups = {s.sharing_group_id for s in levels if s.distribution == SHARING_GROUP}
    if groups:
        if len(groups) == 1 and all(s.distribution == SHARING_GROUP for s in levels) and ceiling > ORG_ONLY:
            return Sharing(SHARING_GROUP, groups.pop())
        return Sharing(ORG_ONLY)
    return Sharing(min([ceiling] + [s.distribution for s in levels]))

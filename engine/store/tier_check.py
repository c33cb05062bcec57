"""Check that Redis and the disk tier agree, and remove what a killed process left behind.

The write order of :mod:`engine.store.tier` (tier first, Redis second; deletes the other way)
means a process killed mid-write can leave only *orphans*: tier values no Redis hash refers to.
They cost disk, never correctness, and :func:`check_tier` with ``repair`` deletes them. A
reference whose value is missing (*missing*) cannot come from a kill; it means the tier lost data
(a restored backup of one side only, a deleted file): it is reported, and ``repair`` deletes
those pictures' records so searches stop offering a candidate that cannot be verified (their
files can be added again).

Run it when no add is in flight: a picture being added has its tier data written a moment
before its record, and would be taken for an orphan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.store import keys
from engine.store.records import RecordStore


@dataclass
class TierReport:
    """What a check found: tier keys nobody refers to, and pictures whose tier values are missing."""

    pictures: int = 0
    orphans: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # picture ids
    repaired: bool = False

    def to_json(self) -> dict:
        return {"pictures": self.pictures, "orphans": len(self.orphans), "missing": len(self.missing),
                "repaired": self.repaired}


def check_tier(records: RecordStore, repair: bool = False, batch: int = 500) -> TierReport:
    """Compare every record's tier references with the tier's keys (both scanned in full)."""
    report = TierReport()
    tier = records.tier
    if tier is None:
        return report
    referenced: dict[str, str] = {}  # tier key -> picture id
    ids = [keys.id_of(k) for k in records.redis.scan_iter(match=keys.PICTURE_PATTERN, count=1000)]
    report.pictures = len(ids)
    for start in range(0, len(ids), batch):
        chunk = ids[start: start + batch]
        pipe = records.redis.pipeline(transaction=False)
        for ident in chunk:
            pipe.hgetall(keys.features(ident))
            pipe.hgetall(keys.image(ident))
        replies = iter(pipe.execute())
        for ident in chunk:
            features, image = next(replies), next(replies)
            for key in [*records.references(ident, features, image=False).values(),
                        *records.references(ident, image, image=True).values()]:
                referenced[key] = ident
    stored = set(tier.keys())
    report.orphans = sorted(stored - set(referenced))
    report.missing = sorted({referenced[k] for k in set(referenced) - stored})
    if repair:
        tier.delete(report.orphans)
        for ident in report.missing:
            records.delete(ident)
        report.repaired = True
    return report


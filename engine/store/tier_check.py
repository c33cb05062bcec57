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

:func:`move_to_tier` moves the large values a store written without a tier (an older version,
or ``bulk_store=redis``) keeps in Redis into the tier, one compare-and-swap per value: a value
changed meanwhile (``quaid reindex``) is left alone, its copy in the tier at worst an orphan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.store import keys
from engine.store.records import RecordStore, tier_field
from engine.store.tier import is_reference, reference, tier_key

# KEYS: one hash. ARGV: field, the value expected there, its replacement. 1 when replaced.
_SWAP = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


@dataclass
class TierReport:
    """What a check found: tier keys nobody refers to, and pictures whose tier values are missing."""

    pictures: int = 0
    orphans: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # picture ids
    repaired: bool = False
    moved: int = 0  # values moved from Redis to the tier (see move_to_tier)

    def to_json(self) -> dict:
        return {"pictures": self.pictures, "orphans": len(self.orphans), "missing": len(self.missing),
                "repaired": self.repaired, "moved": self.moved}


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


def move_to_tier(records: RecordStore, batch: int = 200) -> int:
    """Move the tiered features and kept images that are still inline in Redis to the tier;
    returns how many values moved (0 without a tier)."""
    if records.tier is None:
        return 0
    swap = records.redis.register_script(_SWAP)
    ids = [keys.id_of(k) for k in records.redis.scan_iter(match=keys.PICTURE_PATTERN, count=1000)]
    moved = 0
    for start in range(0, len(ids), batch):
        inline = _inline_values(records, ids[start: start + batch])
        records.tier.put({tier: value for _, _, tier, value in inline})  # durable before the swaps
        for hash_key, name, _, value in inline:
            moved += int(swap(keys=[hash_key], args=[name, value, reference(value)]))
    return moved


def _inline_values(records: RecordStore, ids: list[str]) -> list[tuple[str, str, str, bytes]]:
    """(Redis hash, field, tier key, value) of every tiered value of ``ids`` still kept in Redis."""
    wanted = [(keys.features(i), name, i, False) for i in ids for name in sorted(records.tiered)]
    wanted += [(keys.image(i), "data", i, True) for i in ids]
    pipe = records.redis.pipeline(transaction=False)
    for hash_key, name, _, _ in wanted:
        pipe.hget(hash_key, name)
    out = []
    for (hash_key, name, ident, image), value in zip(wanted, pipe.execute(), strict=True):
        if value is not None and not is_reference(value):
            out.append((hash_key, name, tier_key(ident, tier_field(image, name), reference(value)), value))
    return out

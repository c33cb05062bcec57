"""Picture records in Redis: write, read, update and delete one picture atomically.

A picture is either fully stored or absent: its record, features, index codes and
optional image are written by one Lua script over keys that share the hash tag
``{<id>}`` (see :mod:`engine.store.keys`), so the write is atomic on a single Redis
and on a Redis Cluster alike, and the script's ``EXISTS`` check makes adding the
same bytes twice answer "duplicate" even when two processes race.

Features are stored as raw bytes, one hash field per algorithm — never pickle
(douglas-quaid pickled them; unpickling data from a shared store is code execution).
The record names the algorithm versions they come from (:mod:`engine.store.versions`);
:meth:`RecordStore.refeature` replaces a picture's features, codes and versions in one
script, so a re-extraction interrupted at any point leaves each picture old or new, never mixed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script

from engine.store import keys
from engine.store.cluster import ReplicaWait
from engine.store.tier import Tier, is_reference, reference, tier_key
from engine.store.versions import decode as decode_versions
from engine.store.versions import encode as encode_versions

# KEYS: picture, features, codes, image. ARGV: counts of record/features/codes/image args, then them.
_PUT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local i = 5
for k = 1, 4 do
  local n = tonumber(ARGV[k])
  if n > 0 then redis.call('HSET', KEYS[k], unpack(ARGV, i, i + n - 1)) end
  i = i + n
end
return 1
"""

# KEYS: picture, features, codes, image. Returns the deleted record's fields and its features'
# and image's field/value pairs (where the disk tier's references are), or nil.
_DELETE = """
local record = redis.call('HGETALL', KEYS[1])
if #record == 0 then return false end
local features = redis.call('HGETALL', KEYS[2])
local image = redis.call('HGETALL', KEYS[4])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return {record, features, image}
"""

# KEYS: picture, features, codes. ARGV: versions, counts of feature/code args, then them.
# Replaces the features and codes of a record that exists, and its versions, in one step.
# Returns the replaced features' field/value pairs (where the disk tier's references are), or 0.
_REFEATURE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local old = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2], KEYS[3])
local i = 4
for k = 2, 3 do
  local n = tonumber(ARGV[k])
  if n > 0 then redis.call('HSET', KEYS[k], unpack(ARGV, i, i + n - 1)) end
  i = i + n
end
redis.call('HSET', KEYS[1], 'versions', ARGV[1])
return {old}
"""

# KEYS: picture. ARGV: field/value pairs. Updates only a record that exists.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


HASH_ONLY_FORMAT = "hashes"  # the format of a reference stored from hashes alone
HASH_ONLY_REASON = "hashes-only"  # why a match with one (or a search by hashes) is never accepted


@dataclass(frozen=True)
class PictureRecord:
    """What quaid knows about one stored picture (its features are kept apart).

    ``format`` :data:`HASH_ONLY_FORMAT` marks a reference stored from a partner's hashes, with
    no picture (:mod:`engine.hash_import`); its JSON says ``"hash_only": true``.
    """

    id: str
    name: str = ""
    tags: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict)
    added: float = 0.0  # seconds since the epoch
    size: int = 0  # bytes submitted
    width: int = 0  # pixels, as submitted (before normalisation)
    height: int = 0
    format: str = ""
    cluster: int = 0
    versions: dict[str, int] = field(default_factory=dict)  # algorithm -> version of its stored feature
    noise: dict | None = None  # why the picture is in the noise bank (engine.noise.NoiseMark JSON), or None

    @property
    def hash_only(self) -> bool:
        return self.format == HASH_ONLY_FORMAT

    def to_json(self) -> dict:
        added = datetime.fromtimestamp(self.added, UTC).isoformat(timespec="milliseconds")
        answer = {"id": self.id, "name": self.name, "tags": list(self.tags), "metadata": self.metadata,
                  "added": added.replace("+00:00", "Z"), "size": self.size, "width": self.width,
                  "height": self.height, "format": self.format, "cluster": self.cluster}
        if self.hash_only:
            answer["hash_only"] = True
        if self.noise is not None:
            answer["noise"] = self.noise
        return answer

    def to_hash(self) -> dict[str, str]:
        return {"name": self.name, "tags": json.dumps(list(self.tags)),
                "metadata": json.dumps(self.metadata), "added": repr(self.added), "size": str(self.size),
                "width": str(self.width), "height": str(self.height), "format": self.format,
                "cluster": str(self.cluster), "versions": encode_versions(self.versions),
                "noise": json.dumps(self.noise) if self.noise is not None else ""}

    @classmethod
    def from_hash(cls, picture_id: str, raw: Mapping[bytes, bytes]) -> PictureRecord:
        text = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(id=picture_id, name=text.get("name", ""), tags=tuple(json.loads(text.get("tags", "[]"))),
                   metadata=json.loads(text.get("metadata", "{}")), added=float(text.get("added", 0)),
                   size=int(text.get("size", 0)), width=int(text.get("width", 0)),
                   height=int(text.get("height", 0)), format=text.get("format", ""),
                   cluster=int(text.get("cluster", 0)), versions=decode_versions(text.get("versions")),
                   noise=json.loads(text["noise"]) if text.get("noise") else None)


@dataclass(frozen=True)
class IndexEntry:
    """What the in-memory index and cluster map need of one picture."""

    id: str
    codes: dict[str, bytes]
    cluster: int
    added: float
    versions: bytes = b""  # as stored (see engine.store.versions); empty: written before versioning


class RecordStore:
    """Redis access for picture records. The client must not decode responses (features are bytes).

    With a ``tier`` (:mod:`engine.store.tier`), the features named in ``tiered`` and the kept image
    are written there and Redis holds references to them; every read here resolves them, so
    callers see the same bytes either way.
    """

    def __init__(self, client: redis.Redis | RedisCluster, replica_wait: ReplicaWait | None = None,
                 tier: Tier | None = None, tiered: Iterable[str] = ()) -> None:
        self.redis = client
        self.replica_wait = replica_wait  # when set, writes are acknowledged only once replicated
        self.tier = tier
        self.tiered = frozenset(tiered) if tier is not None else frozenset()
        self._put = client.register_script(_PUT)
        self._delete = client.register_script(_DELETE)
        self._update = client.register_script(_UPDATE)
        self._refeature = client.register_script(_REFEATURE)

    def put(self, record: PictureRecord, features: Mapping[str, bytes], codes: Mapping[str, bytes],
            image: tuple[bytes, str] | None = None, client: redis.client.Pipeline | None = None) -> bool:
        """Store a picture unless one with that id exists; True when it was added.

        With ``client`` (a pipeline) the write is queued there and the answer is the pipeline's; the
        disk tier's part is written (durably) before this returns, in any case.
        """
        features, image_fields, bulk = self.split(record.id, features, image)
        self.tier_put(bulk)
        return self.put_split(record, features, codes, image_fields, client)

    def put_split(self, record: PictureRecord, features: Mapping[str, bytes], codes: Mapping[str, bytes],
                  image_fields: Mapping[str, bytes | str],
                  client: redis.client.Pipeline | None = None) -> bool:
        """:meth:`put` of what :meth:`split` kept for Redis, its tier part already written (a bulk
        ingest writes the tier part of many pictures in one durable commit)."""
        parts = [_flat(record.to_hash()), _flat(features), _flat(codes), _flat(image_fields)]
        argv = [len(p) for p in parts] + [value for p in parts for value in p]
        if client is None:
            return bool(self._write(self._put, keys.picture_keys(record.id), argv))
        return self._put(keys=keys.picture_keys(record.id), args=argv, client=client)

    def split(self, picture_id: str, features: Mapping[str, bytes], image: tuple[bytes, str] | None
              ) -> tuple[dict[str, bytes], dict[str, bytes | str], dict[str, bytes]]:
        """The features and image fields Redis keeps (references in place of tiered values), and the
        tier's part (tier key -> value). Without a tier, everything stays in Redis."""
        kept: dict[str, bytes] = dict(features)
        image_fields: dict[str, bytes | str] = {"data": image[0], "type": image[1]} if image else {}
        bulk: dict[str, bytes] = {}
        if self.tier is None:
            return kept, image_fields, bulk
        moved = [(kept, name) for name in kept if name in self.tiered]
        if image:
            moved.append((image_fields, "data"))
        for fields, name in moved:
            ref = reference(fields[name])
            bulk[tier_key(picture_id, tier_field(fields is image_fields, name), ref)] = fields[name]
            fields[name] = ref
        return kept, image_fields, bulk

    def tier_put(self, bulk: Mapping[str, bytes]) -> None:
        """Write a tier part from :meth:`split` (before the Redis write that refers to it)."""
        if bulk and self.tier is not None:
            self.tier.put(bulk)

    def delete(self, picture_id: str) -> PictureRecord | None:
        """Remove every key of the picture; returns what was removed, None when absent."""
        raw = self._write(self._delete, keys.picture_keys(picture_id), [])
        if not raw:
            return None
        record, features, image = (_pairs(part) for part in raw)
        self._tier_delete(picture_id, features, image)
        return PictureRecord.from_hash(picture_id, record)

    def _tier_delete(self, picture_id: str, features: Mapping[bytes, bytes],
                     image: Mapping[bytes, bytes], keep: Iterable[str] = ()) -> None:
        """Delete the tier data the given (replaced or deleted) Redis fields referred to."""
        if self.tier is None:
            return
        doomed = set(self.references(picture_id, features, image=False).values())
        doomed |= set(self.references(picture_id, image, image=True).values())
        doomed -= set(keep)
        if doomed:
            self.tier.delete(sorted(doomed))

    @staticmethod
    def references(picture_id: str, fields: Mapping[bytes | str, bytes], image: bool) -> dict[str, str]:
        """Field name -> tier key, for the fields of one hash that hold references."""
        out = {}
        for name, value in fields.items():
            text = name.decode() if isinstance(name, bytes) else name
            if is_reference(value):
                out[text] = tier_key(picture_id, tier_field(image, text), value)
        return out

    def refeature(self, picture_id: str, features: Mapping[str, bytes], codes: Mapping[str, bytes],
                  feature_versions: Mapping[str, int]) -> bool:
        """Replace a stored picture's features, index codes and versions at once; False when absent.

        Features and codes of algorithms not in ``features`` are dropped with the old ones.
        """
        features, _, bulk = self.split(picture_id, features, None)
        self.tier_put(bulk)
        argv = [encode_versions(feature_versions), 2 * len(features), 2 * len(codes),
                *_flat(features), *_flat(codes)]
        replaced = self._write(self._refeature, keys.picture_keys(picture_id)[:3], argv)
        if not replaced:
            if bulk and self.tier is not None:
                self.tier.delete(bulk)  # the picture is gone: nothing refers to them
            return False
        self._tier_delete(picture_id, _pairs(replaced[0]), {}, keep=bulk)
        return True

    def update(self, picture_id: str, *, tags: Iterable[str] | None = None,
               metadata: Mapping | None = None) -> bool:
        """Replace tags and/or metadata of an existing record; False when absent."""
        changes = {}
        if tags is not None:
            changes["tags"] = json.dumps(list(tags))
        if metadata is not None:
            changes["metadata"] = json.dumps(dict(metadata))
        if not changes:
            return self.redis.exists(keys.picture(picture_id)) == 1
        return bool(self._write(self._update, [keys.picture(picture_id)], _flat(changes)))

    def set_noise(self, picture_id: str, mark: Mapping | None) -> bool:
        """Put a picture in the noise bank (``mark``: why, as JSON) or take it out (None), and keep
        the bank's index (:data:`keys.NOISE`) in step; False when the picture is absent.

        The record is the truth (a search reads the mark with the record it fetches anyway); the
        index, a single key outside the picture's slot, is written after it and only lists.
        """
        value = json.dumps(dict(mark)) if mark is not None else ""
        if not self._write(self._update, [keys.picture(picture_id)], ["noise", value]):
            return False
        if mark is None:
            self.redis.zrem(keys.NOISE, picture_id)
        else:
            self.redis.zadd(keys.NOISE, {picture_id: float(mark.get("at", time.time()))})
        return True

    def noise_ids(self, offset: int = 0, limit: int = 100) -> list[str]:
        """Pictures in the noise bank, most recently marked first."""
        return [i.decode() for i in self.redis.zrevrange(keys.NOISE, offset, offset + limit - 1)]

    def noise_count(self) -> int:
        return int(self.redis.zcard(keys.NOISE))

    def forget_noise(self, ids: Iterable[str]) -> None:
        """Drop ids from the noise bank's index (their pictures were deleted)."""
        ids = list(ids)
        if ids:
            self.redis.zrem(keys.NOISE, *ids)

    def get(self, picture_id: str) -> PictureRecord | None:
        return self.get_many([picture_id]).get(picture_id)

    def get_many(self, ids: Iterable[str]) -> dict[str, PictureRecord]:
        """Records of the ids that exist, fetched in one pipeline."""
        ids = list(ids)
        pipe = self.redis.pipeline(transaction=False)
        for picture_id in ids:
            pipe.hgetall(keys.picture(picture_id))
        return {i: PictureRecord.from_hash(i, raw) for i, raw in zip(ids, pipe.execute(), strict=True) if raw}

    def features_many(self, ids: Iterable[str]) -> dict[str, dict[str, bytes]]:
        """Stored features of the ids that exist, fetched in one pipeline."""
        ids = list(ids)
        pipe = self.redis.pipeline(transaction=False)
        for picture_id in ids:
            pipe.hgetall(keys.features(picture_id))
        found = {i: {k.decode(): v for k, v in raw.items()}
                 for i, raw in zip(ids, pipe.execute(), strict=True) if raw}
        self._resolve(found)
        return found

    def _resolve(self, found: dict[str, dict[str, bytes]], image: bool = False) -> None:
        """Replace tier references by their values, in place; a value missing from the tier (its
        picture deleted meanwhile) drops the field."""
        if self.tier is None:
            return
        wanted = {(ident, name): key for ident, fields in found.items()
                  for name, key in self.references(ident, fields, image).items()}
        values = self.tier.get(wanted.values()) if wanted else {}
        for (ident, name), key in wanted.items():
            if key in values:
                found[ident][name] = values[key]
            else:
                del found[ident][name]

    def shortlist_features(self, ids: Iterable[str], eager: Iterable[str]) -> dict[str, LazyFeatures]:
        """A shortlist's features, in the order given (one pipeline): the ``eager`` ones (the cheap
        algorithms') now, the others (ORB's keypoints: ~37 KB a picture) on first access or
        :meth:`prefetch`, so that a candidate the cheap algorithms settle never costs their transfer.

        Ids without features are gone (a picture's keys are written and deleted together).
        Records are not fetched: a search needs them only for the matches it returns.
        """
        ids, eager = list(ids), list(eager)
        pipe = self.redis.pipeline(transaction=False)
        for picture_id in ids:
            pipe.hkeys(keys.features(picture_id))
            if eager:  # nothing queued otherwise (ECHO has no key: a cluster pipeline refuses it)
                pipe.hmget(keys.features(picture_id), eager)
        replies = iter(pipe.execute())
        out: dict[str, LazyFeatures] = {}
        for picture_id in ids:
            names, values = next(replies), next(replies) if eager else []
            if names:
                loaded = {n: v for n, v in zip(eager, values, strict=False) if v is not None}
                out[picture_id] = LazyFeatures(self, picture_id, loaded, [n.decode() for n in names])
        return out

    def prefetch(self, features: Sequence[Mapping[str, bytes]], names: Sequence[str]) -> None:
        """Load ``names`` of every :class:`LazyFeatures` in ``features`` in one pipeline (a shortlist's
        ORB features before its verification: one round trip instead of one per candidate)."""
        wanted = [(f, n) for f in features if isinstance(f, LazyFeatures) for n in names if f.missing(n)]
        if not wanted:
            return
        pipe = self.redis.pipeline(transaction=False)
        for lazy, name in wanted:
            pipe.hget(keys.features(lazy.picture_id), name)
        values = {}
        for (lazy, name), value in zip(wanted, pipe.execute(), strict=True):
            if value is not None:
                values.setdefault(lazy.picture_id, {})[name] = value
        self._resolve(values)
        for lazy, name in wanted:
            if name in values.get(lazy.picture_id, {}):
                lazy.loaded(name, values[lazy.picture_id][name])

    def feature(self, picture_id: str, name: str) -> bytes | None:
        value = self.redis.hget(keys.features(picture_id), name)
        if value is None:
            return None
        found = {picture_id: {name: value}}
        self._resolve(found)
        return found[picture_id].get(name)

    def index_entries(self, ids: Iterable[str]) -> dict[str, IndexEntry]:
        """Codes, cluster, time added and feature versions of the ids that exist (one pipeline)."""
        ids = list(ids)
        pipe = self.redis.pipeline(transaction=False)
        for picture_id in ids:
            pipe.hgetall(keys.codes(picture_id))
            pipe.hmget(keys.picture(picture_id), "cluster", "added", "versions")
        replies = pipe.execute()
        out = {}
        for n, picture_id in enumerate(ids):
            codes, (cluster, added, stored_versions) = replies[2 * n], replies[2 * n + 1]
            if cluster is not None:
                out[picture_id] = IndexEntry(picture_id, {k.decode(): v for k, v in codes.items()},
                                             int(cluster), float(added or 0), stored_versions or b"")
        return out

    def scan_entries(self, batch: int = 1000) -> Iterator[IndexEntry]:
        """Every stored picture's index entry (SCAN: no blocking, works while others write)."""
        for entries in self.scan_batches(batch):
            yield from entries

    def scan_batches(self, batch: int = 1000) -> Iterator[list[IndexEntry]]:
        """Every stored picture's index entry, ``batch`` ids per Redis pipeline."""
        pending: list[str] = []
        for key in self.redis.scan_iter(match=keys.PICTURE_PATTERN, count=batch):
            pending.append(keys.id_of(key))
            if len(pending) >= batch:
                yield list(self.index_entries(pending).values())
                pending = []
        if pending:
            yield list(self.index_entries(pending).values())

    def image(self, picture_id: str) -> tuple[bytes, str] | None:
        data, kind = self.redis.hmget(keys.image(picture_id), "data", "type")
        if data is None:
            return None
        found = {picture_id: {"data": data}}
        self._resolve(found, image=True)
        return (found[picture_id]["data"], kind.decode()) if "data" in found[picture_id] else None

    def next_cluster(self) -> int:
        return int(self.redis.incr(keys.CLUSTER_COUNTER))

    def set_cluster(self, picture_id: str, cluster: int) -> bool:
        """Move a picture to another cluster (used when clusters are recomputed)."""
        return bool(self._write(self._update, [keys.picture(picture_id)], ["cluster", str(cluster)]))

    def _write(self, script: Script, script_keys: list[str], args: list) -> object:
        """Run a write script, through the replica wait when one is configured (see engine.store.cluster)."""
        if self.replica_wait is None:
            return script(keys=script_keys, args=args)
        (reply,) = self.replica_wait.run(script_keys[0],
                                         lambda pipe: script(keys=script_keys, args=args, client=pipe))
        return reply


class FeatureGone(KeyError):
    """A feature listed when the candidate was fetched has vanished: another process deleted the
    picture while this one was comparing it. ``picture_id`` says which."""

    def __init__(self, picture_id: str, name: str) -> None:
        super().__init__(name)
        self.picture_id = picture_id


class LazyFeatures(Mapping[str, bytes]):
    """A picture's stored features; those not loaded yet are fetched from Redis on first access."""

    def __init__(self, store: RecordStore, picture_id: str, loaded: dict[str, bytes],
                 names: Iterable[str]) -> None:
        self._store, self._id, self._loaded = store, picture_id, dict(loaded)
        self._names = tuple(names)

    @property
    def picture_id(self) -> str:
        return self._id

    def missing(self, name: str) -> bool:
        """Stored but not loaded yet."""
        return name in self._names and name not in self._loaded

    def loaded(self, name: str, value: bytes) -> None:
        """Record a value fetched elsewhere (:meth:`RecordStore.prefetch`)."""
        self._loaded[name] = value

    def __getitem__(self, name: str) -> bytes:
        if name not in self._loaded:
            if name not in self._names:
                raise KeyError(name)
            value = self._store.feature(self._id, name)
            if value is None:
                raise FeatureGone(self._id, name)
            self._loaded[name] = value
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


def tier_field(image: bool, name: str) -> str:
    """The middle part of a tier key: ``image`` for the kept image, else the feature's name."""
    return "image" if image else name


def _pairs(flat: Sequence) -> dict:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _flat(mapping: Mapping[str, object]) -> list:
    return [item for pair in mapping.items() for item in pair]


def new_record(picture_id: str, **fields: object) -> PictureRecord:
    """A record stamped with the current time."""
    return replace(PictureRecord(id=picture_id), added=time.time(), **fields)

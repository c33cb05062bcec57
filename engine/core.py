"""The Quaid facade: add, search, delete, browse; ties store, index, clusters and matcher.

CONTRACT (used by the CLI and the service):

    q = Quaid.open(settings)                     # starts embedded Redis when settings.redis_url is None;
                                                 # StaleStore when features of other versions are stored
    q.add(data: bytes, name: str = "", tags=(), metadata=None) -> AddResult   # .id .name .status ("added"|"duplicate") .cluster ; .to_json()
    q.search(data: bytes, top: int = 10, include_rejected=False, domain=None) -> SearchResult  # .decision .matches[Match] .noise ; .to_json()
                                                 # domain: host/URL, or several (engine.brands)
    q.brands -> BrandRegistry                    # each brand's own domains (engine.brands)
    q.get(id) -> PictureRecord (.to_json())      # raises NotFound
    q.image(id) -> tuple[bytes, str] | None     # stored bytes or thumbnail, with content type
    q.update(id, tags=None, metadata=None) -> PictureRecord
    q.delete(id) -> None                         # raises NotFound
    q.clusters() -> list[dict]; q.cluster(id, offset, limit) -> dict; q.export(fmt: "json"|"graph") -> dict
    q.stats() -> dict
    q.events.read(after, limit) -> dict          # match events: pictures added and the earlier ones they matched
    q.noise -> NoiseBank                         # mark / unmark / list the noise bank (engine.noise)
    q.close()
    q.resolve(id_or_prefix) -> str               # full id from a unique prefix (CLI convenience)
    Quaid.open(settings, allow_stale=True).refeature(id, original_bytes) -> bool   # quaid reindex
Errors are engine.errors.* exceptions.

Search: decode the query, take its prefilter codes, ask the candidate index
for a bounded shortlist (``settings.shortlist``), fetch the shortlist's stored
features and records in one pipeline, score each with the cheap algorithms, verify
the unsure ones with the costly verifier in rank order within the verification
budget (:meth:`engine.matching.Matcher.compare_shortlist`), and sort best first
(decision, then distance). Noise pictures then leave the answer, which says when the
query is noise itself (:mod:`engine.noise`). With the query's domain(s), matches against
brand baselines say whether the query is the brand's own site (:mod:`engine.brands`).
Add runs the same search to choose the picture's cluster, then stores the picture
with the features the search already extracted, in the noise bank when the search
answers noise; the earlier pictures a picture that is not noise matched are announced
on the match-event stream (:mod:`engine.store.match_events`), which the MISP write-back
and the AIL connector follow.
"""  # noqa: E501

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace

import redis

from engine.algorithms.base import COSTLY
from engine.brands import BrandRegistry, judge, query_domains
from engine.budget import budget_from_megapixels
from engine.clusters import choose_cluster
from engine.config import Settings, load_settings, redact_url
from engine.decision import Decision
from engine.errors import BadInput, NotFound, PictureTooLarge, StaleStore, StoreUnavailable
from engine.export import export_graph, export_json
from engine.hash_search import hash_only_verdict
from engine.low_information import detect, known_pdq_quality
from engine.matching import Matcher, Query, closest_accepted
from engine.memory import keep_freed_memory
from engine.noise import NoiseBank, flagged, mark_of, without_noise
from engine.picture import Picture, load_picture
from engine.prepared import Prepared, PreparedQuery, prepare
from engine.results import AddResult, Match, SearchResult, event_match
from engine.store import ChangeLog, Connection, PictureRecord, RecordStore, connect
from engine.store.cluster import used_memory
from engine.store.match_events import MatchEvents
from engine.store.mirror import Mirror
from engine.store.records import FeatureGone, IndexEntry, new_record
from engine.store.snapshot import default_path as default_snapshot_path
from engine.store.tier import open_tier
from engine.store.tier_check import TierReport, check_tier, move_to_tier
from engine.store.versions import VersionCheck, current_versions, encode, renamed_versions

log = logging.getLogger(__name__)
MAX_EVENT_MATCHES = 100  # earlier pictures named in one match event, best first


class StoredQuery(Query):
    """A query made of stored features (no picture): used to compare stored pictures together."""

    def __init__(self, matcher: Matcher, features: Mapping[str, bytes]) -> None:
        super().__init__(matcher, None)  # type: ignore[arg-type]
        self._features = {name: [value] for name, value in features.items()}


class Quaid:
    """One store (Redis), its in-memory candidate index and clusters, and the matcher."""

    def __init__(self, client: redis.Redis, settings: Settings | None = None,
                 matcher: Matcher | None = None, connection: Connection | None = None,
                 allow_stale: bool = False) -> None:
        """Load the candidate index; a store holding features of other algorithm versions raises
        :class:`StaleStore` unless ``allow_stale`` (``quaid reindex``: they stay out of searches)."""
        self.settings = settings if settings is not None else load_settings()
        self.matcher = matcher if matcher is not None else Matcher(self.settings)
        wait = connection.replica_wait if connection is not None else None  # engine.store.cluster
        self._cheap = [a.name for a in self.matcher.algorithms if a.cost < COSTLY]  # fetched eagerly
        settings = self.settings
        tier = open_tier(settings.bulk_store, settings.home, settings.redis_url is None, client)
        costly = [a.name for a in self.matcher.algorithms if a.cost >= COSTLY]  # large, read for a few
        self.records = RecordStore(client, wait, tier, tiered=costly)
        self.versions = VersionCheck(current_versions(self.matcher.algorithms, self.settings),
                                     renamed_versions(self.matcher.algorithms))
        multihash_from = self.settings.index_multihash_from
        self.mirror = Mirror(self.records, ChangeLog(client, replica_wait=wait), versions=self.versions,
                             multihash_from=multihash_from if multihash_from >= 0 else None)
        self._connection = connection
        self.events = MatchEvents(client)
        self.noise = NoiseBank(self.records)
        # one budget for every thread of this process (request threads and job workers share this Quaid)
        self.budget = budget_from_megapixels(settings.decode_budget_megapixels, settings.decode_wait)
        self._snapshot = default_snapshot_path(settings.home) if settings.index_snapshot else None
        try:
            self.mirror.start(self._snapshot, lambda n: log.info("index rebuild: %d pictures loaded", n))
        except redis.RedisError as exc:
            self._close_tier()
            raise StoreUnavailable(f"cannot read the store: {exc}") from None
        if self.mirror.stale and not allow_stale:
            self._close_tier()
            raise StaleStore(self.versions.describe(self.mirror.stale.values()))

    @classmethod
    def open(cls, settings: Settings | None = None, matcher: Matcher | None = None,
             allow_stale: bool = False) -> Quaid:
        """Connect to ``settings.redis_url``, or start/reuse the embedded Redis in ``settings.home``."""
        settings = settings if settings is not None else load_settings()
        keep_freed_memory()  # a search reuses its buffers instead of faulting them in (engine.memory)
        connection = connect(settings.redis_url, settings.home)
        try:
            return cls(connection.client, settings, matcher, connection, allow_stale)
        except BaseException:
            connection.close()
            raise

    @property
    def redis(self) -> redis.Redis:
        """The Redis client of the store (the service keeps its jobs and reviews next to the pictures)."""
        return self.records.redis

    def revive_store(self) -> bool:
        """Restart the embedded Redis if it died (see :meth:`Connection.revive`); False when external."""
        return self._connection.revive() if self._connection is not None else False

    def save_snapshot(self) -> bool:
        """Write the index snapshot when that beats replaying the changes since the last one at the
        next start (:meth:`Mirror.snapshot_due`); True when written."""
        if self._snapshot is None or not self.mirror.snapshot_due():
            return False
        return self.mirror.save_snapshot(self._snapshot)

    def close(self) -> None:
        """Write the index snapshot (when the index moved on since the last one), then disconnect."""
        self.save_snapshot()
        self._snapshot = None
        self._close_tier()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _close_tier(self) -> None:
        if self.records.tier is not None:
            self.records.tier.close()

    def __enter__(self) -> Quaid:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- add / search -------------------------------------------------------------------

    def add(self, data: bytes, name: str = "", tags: Iterable[str] = (),
            metadata: Mapping | None = None) -> AddResult:
        """Store a picture; adding bytes already stored answers "duplicate" and changes nothing."""
        picture_id = self._check_size(data)
        existing = self.records.get(picture_id)
        if existing is not None:
            return AddResult(picture_id, existing.name, "duplicate", existing.cluster, mark_of(existing))
        prepared = prepare(self.matcher, self.settings, data, self.budget)
        return self.add_prepared(prepared, name, tags, metadata)

    def add_prepared(self, prepared: Prepared, name: str = "", tags: Iterable[str] = (),
                     metadata: Mapping | None = None, tier_written: bool = False) -> AddResult:
        """Second half of :meth:`add`: search the store to choose the cluster, then write.

        ``tier_written``: the disk-tier part of ``prepared`` is stored already (:mod:`engine.ingest`
        writes a batch's in one commit before adding them one by one).
        """
        picture_id = prepared.id
        query = PreparedQuery(self.matcher, prepared)
        matches = self._matches(query, include_rejected=False, codes=prepared.codes, own=picture_id)
        noise = without_noise(matches, flagged(prepared.low_information))[1]
        noise = noise.stamped() if noise is not None else None
        # noise pictures cluster with noise pictures only, other pictures with other pictures only
        same_kind = [m for m in matches if (m.noise is None) == (noise is None)]
        cluster = choose_cluster((m.cluster, m.decision, m.distance) for m in same_kind)
        if cluster is None:
            cluster = self.records.next_cluster()
        features = query.stored_features()
        codes = self.matcher.prefilter_codes(features)
        record = new_record(picture_id, name=name, tags=tuple(tags), metadata=dict(metadata or {}),
                            size=prepared.size, width=prepared.width, height=prepared.height,
                            format=prepared.format, cluster=cluster, versions=self.versions.current,
                            noise=noise.to_json() if noise is not None else None)
        kept, image_fields, bulk = self.records.split(picture_id, features, prepared.image)
        if not tier_written:
            self.records.tier_put(bulk)
        self.mirror.changes.publish("add", picture_id)  # before the write: see engine.store.changes
        if not self.records.put_split(record, kept, codes, image_fields):
            existing = self.records.get(picture_id)  # another process stored it meanwhile
            if existing is not None:
                return AddResult(picture_id, existing.name, "duplicate", existing.cluster, mark_of(existing))
            return AddResult(picture_id, name, "duplicate", cluster)
        if noise is not None:
            self.noise.index(picture_id, noise)
        self.mirror.apply(IndexEntry(picture_id, codes, cluster, record.added, encode(self.versions.current)))
        if noise is None:  # a noise picture is news to nobody (connectors tag nothing for noise)
            earlier = [m for m in same_kind if m.id != picture_id][:MAX_EVENT_MATCHES]
            self.announce(record, [event_match(m) for m in earlier])
        return AddResult(picture_id, name, "added", cluster, noise)

    def announce(self, record: PictureRecord, earlier: list[dict]) -> None:
        """The match event of a picture just stored, naming the ``earlier`` pictures it matched
        (:mod:`engine.store.match_events`; none: no event). The picture is stored whatever happens
        here: a store error loses the event, logged, and fails no add (adding again would answer
        "duplicate" and announce nothing either)."""
        if not earlier:
            return
        try:
            self.events.publish(record.to_json(), earlier)
        except redis.RedisError as exc:
            log.warning("match event of %s not written: %s", record.id, exc)

    def refeature(self, picture_id: str, data: bytes) -> bool:
        """Re-extract a stored picture's features from its original bytes (``quaid reindex``).

        Features, index codes and versions are replaced in one step; record, cluster and kept image
        stay. False when the picture is gone. ``data`` must be the bytes the id was computed from.
        """
        if self._check_size(data) != picture_id:
            raise BadInput(f"these bytes are not picture {picture_id} (their SHA-256 differs)")
        query = self.matcher.query(self._load(data))
        features = query.stored_features()
        codes = self.matcher.prefilter_codes(features)
        if not self.records.refeature(picture_id, features, codes, self.versions.current):
            return False
        self.mirror.changes.publish("update", picture_id)  # other processes re-read its codes
        entries = self.records.index_entries([picture_id])
        if picture_id in entries:
            self.mirror.apply(entries[picture_id])
        return True

    def search(self, data: bytes, top: int = 10, include_rejected: bool = False,
               domain: str | Iterable[str] | None = None) -> SearchResult:
        """Stored pictures matching ``data``, best first, at most ``top``. ``domain``: the URL or
        host the query was seen on (or several: a redirect chain), to judge matches against
        brand baselines."""
        if top < 1:
            raise BadInput("top must be at least 1")
        seen_on = query_domains(domain)
        picture_id = self._check_size(data)
        picture = self._load(data)
        query = self.matcher.query(picture)
        matches = self._matches(query, include_rejected, own=picture_id)
        known = {name: query.features(name) for name in query.extracted}
        measures = detect(picture, known_pdq_quality(known)) if self.settings.noise_detector else None
        matches, noise = without_noise(matches, flagged(measures.to_json() if measures else None))
        matches = matches[:top]
        checks = judge({m.id: (m.decision.value, m.reference) for m in matches}, seen_on, self.brands)
        matches = [replace(m, brand=checks.get(m.id)) for m in matches]
        decision = matches[0].decision if matches else Decision.REJECTED
        return SearchResult(decision, matches, seen_on, query, noise)

    @property
    def brands(self) -> BrandRegistry:
        """Each brand's own domains (:mod:`engine.brands`), kept next to the pictures."""
        return BrandRegistry(self.records.redis)

    def _matches(self, query: Query, include_rejected: bool, codes: dict[str, list[bytes]] | None = None,
                 own: str | None = None) -> list[Match]:
        """The shortlist's verdicts as matches, best first; of several accepted, only the closest
        (and its cluster) stay accepted (:func:`engine.matching.closest_accepted`; ``own``: the
        query's id, which matches itself when stored). ``codes``: the query's candidate-index codes
        when already computed (bulk ingest)."""
        self.mirror.sync()
        codes = codes if codes is not None else self.matcher.query_codes(query)
        candidates = self.mirror.shortlist(codes, self.settings.shortlist)
        stored = self.records.shortlist_features((c.id for c in candidates), eager=self._cheap)
        for candidate in candidates:
            if candidate.id not in stored:
                self.mirror.forget(candidate.id)  # deleted by a process that died before announcing it
        while True:
            try:
                verdicts = self.matcher.compare_shortlist(query, stored, prefetch=self.records.prefetch)
                break
            except FeatureGone as gone:  # deleted by another process while we compared it: drop it
                stored.pop(gone.picture_id)
                self.mirror.forget(gone.picture_id)
        wanted = [i for i in stored if include_rejected or verdicts[i].decision != Decision.REJECTED]
        records = self.records.get_many(wanted)  # only the answer's records travel
        matches = []
        for ident in wanted:
            if ident not in records:  # deleted by another process meanwhile
                self.mirror.forget(ident)
                continue
            record = records[ident]
            verdict = hash_only_verdict(verdicts[ident]) if record.hash_only else verdicts[ident]
            if verdict.decision == Decision.REJECTED and not include_rejected:
                continue  # a hash-only reference its hashes' own thresholds reject
            matches.append(Match(ident, record.name, record.cluster, record.tags, verdict, record.metadata,
                                 noise=mark_of(record)))
        kept = closest_accepted({m.id: m.verdict for m in matches}, {m.id: m.cluster for m in matches}, own)
        matches = [replace(m, verdict=kept[m.id]) for m in matches]
        matches.sort(key=lambda m: (m.decision.rank, m.distance, m.id))
        return matches

    def search_hashes(self, hashes: object, top: int = 10, include_rejected: bool = False,
                      domain: str | Iterable[str] | None = None) -> dict:
        """Stored pictures near a partner's hashes (no picture): see :mod:`engine.hash_search`;
        ``domain`` as for :meth:`search`."""
        from engine.hash_search import search_hashes

        return search_hashes(self, hashes, top, include_rejected, domain)

    def add_hashes(self, hashes: object, name: str = "", tags: Iterable[str] = (),
                   metadata: Mapping | None = None) -> AddResult:
        """Store a hash-only reference (a partner's hashes, no picture): see :mod:`engine.hash_import`."""
        from engine.hash_import import add_hash_reference

        return add_hash_reference(self, hashes, name, tags, metadata)

    # --- browse / edit ------------------------------------------------------------------

    def get(self, picture_id: str) -> PictureRecord:
        record = self.records.get(picture_id)
        if record is None:
            raise NotFound(f"no picture with id {picture_id}")
        return record

    def image(self, picture_id: str) -> tuple[bytes, str] | None:
        return self.records.image(picture_id)

    def update(self, picture_id: str, tags: Iterable[str] | None = None,
               metadata: Mapping | None = None) -> PictureRecord:
        if not self.records.update(picture_id, tags=tags, metadata=metadata):
            raise NotFound(f"no picture with id {picture_id}")
        self.mirror.changes.publish("update", picture_id)
        return self.get(picture_id)

    def delete(self, picture_id: str) -> None:
        deleted = self.records.delete(picture_id)
        if deleted is None:
            raise NotFound(f"no picture with id {picture_id}")
        if deleted.noise is not None:
            self.records.forget_noise([picture_id])
        self.mirror.forget(picture_id)
        self.mirror.changes.publish("delete", picture_id)  # after the delete: see engine.store.changes

    def check_store(self, repair: bool = False) -> TierReport:
        """Compare Redis with the disk tier (:mod:`engine.store.tier_check`); ``repair`` first moves
        large values still kept in Redis to the tier, then removes orphaned tier data and the
        records whose tier data is lost."""
        moved = move_to_tier(self.records) if repair else 0
        report = check_tier(self.records, repair=repair)
        report.moved = moved
        if repair:
            for ident in report.missing:
                self.mirror.forget(ident)
                self.mirror.changes.publish("delete", ident)
        return report

    def resolve(self, prefix: str) -> str:
        """The full id of a stored picture from its id or a unique prefix of it (>= 4 hex digits)."""
        prefix = prefix.strip().lower()
        if len(prefix) == 64:
            return prefix
        if len(prefix) < 4:
            raise BadInput("give at least 4 characters of the id")
        self.mirror.sync()
        with self.mirror.lock:
            found = [i for i in self.mirror.index.ids() if i.startswith(prefix)]
        if not found:
            raise NotFound(f"no picture with an id starting {prefix}")
        if len(found) > 1:
            raise BadInput(f"{len(found)} pictures have ids starting {prefix}; give more characters")
        return found[0]

    def clusters(self) -> list[dict]:
        """Every cluster (number, representative, size), largest first."""
        self.mirror.sync()
        return [info.to_json() for info in self.mirror.clusters.all()]

    def cluster(self, cluster_id: int | str, offset: int = 0, limit: int | None = None) -> dict:
        """One cluster with its members, oldest (the representative) first: those from ``offset``
        on, at most ``limit`` of them (all when None); ``size`` counts every member."""
        self.mirror.sync()
        try:
            number = int(cluster_id)
        except (TypeError, ValueError):
            raise BadInput(f"cluster ids are numbers, got {cluster_id!r}") from None
        info = self.mirror.clusters.info(number)
        if info is None:
            raise NotFound(f"no cluster {cluster_id}")
        members = self.mirror.clusters.members(number)[offset:]
        members = members if limit is None else members[:limit]
        records = self.records.get_many(members)
        return {**info.to_json(), "offset": offset,
                "members": [records[i].to_json() for i in members if i in records]}

    def export(self, fmt: str = "json") -> dict:
        """``json``: every record and cluster. ``graph``: nodes, edges (verdicts), clusters."""
        self.mirror.sync()
        if fmt == "json":
            return export_json(self)
        if fmt == "graph":
            return export_graph(self)
        raise BadInput(f"unknown export format {fmt!r}; use json or graph")

    def stats(self) -> dict:
        self.mirror.sync()
        stats = {"pictures": len(self.mirror.index), "clusters": len(self.mirror.clusters),
                 "noise": self.records.noise_count(),
                 "store_bytes": used_memory(self.records.redis),
                 "index_backend": self.mirror.index.backend,
                 "redis": redact_url(self.settings.redis_url) or f"embedded ({self.settings.home / 'redis'})"}
        embedded = self._connection.embedded if self._connection else None
        if embedded is not None:  # what persistence costs on disk (AOF + RDB)
            stats["disk_bytes"] = sum(p.stat().st_size for p in embedded.data_dir.rglob("*") if p.is_file())
        tier = self.records.tier
        stats["bulk_store"] = tier.description if tier is not None else "redis (in the store)"
        if tier is not None and tier.size_bytes() is not None:
            stats["bulk_bytes"] = tier.size_bytes()
        return stats

    # --- helpers ------------------------------------------------------------------------

    def load_query(self, data: bytes) -> Picture:
        """Decode a query under the engine's limits (bytes, pixels, decoding budget)."""
        self._check_size(data)
        return self._load(data)

    def _check_size(self, data: bytes) -> str:
        if len(data) > self.settings.max_upload_bytes:
            raise PictureTooLarge(f"{len(data)} bytes, above the limit of {self.settings.max_upload_bytes}")
        return hashlib.sha256(data).hexdigest()

    def _load(self, data: bytes) -> Picture:
        settings = self.settings
        return load_picture(data, max_pixels=settings.max_pixels, working_side=settings.working_side,
                            budget=self.budget)

"""Every JSON body the service answers, as typed models (see :mod:`engine.service.schema`).

The views build these from what the engine returns and send them; the OpenAPI
document's schemas are generated from the same classes, so the two cannot differ.
The cluster and graph answers are in :mod:`engine.service.cluster_models`.
Timestamps: ``Picture.added`` is an ISO 8601 string (UTC); job and review times are
seconds since the epoch (numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from flask import Response, jsonify

from engine.service.schema import build, dump, info, optional

Decision = Literal["accepted", "to-review", "rejected"]
Vote = Literal["yes", "maybe", "no"]
Reason = Literal["same-template", "closer-match", "hashes-only"]
Verdict = Literal["accepted", "rejected"]
BrandVerdict = Literal["phishing-suspected", "legitimate"]
ReviewVerdict = Literal["accepted", "rejected", "noise"]  # noise: the pair's pictures go to the noise bank
NoiseReason = Literal["marked", "review", "low-information", "matches-noise"]

PICTURE_ID = r"^[0-9a-f]{64}$"
ITEM_ID = r"^[0-9a-f]{32}$"
_ID = {"pattern": PICTURE_ID, "description": "SHA-256 hex of the picture bytes"}
_REASON = {"description": "why the pair is not accepted: same-template (same site or kit, other content), "
                       "closer-match (another stored picture matches clearly better), or hashes-only "
                       "(the stored reference, or the query, is hashes without a picture)"}
_DISTANCE = {"minimum": 0, "maximum": 1, "description": "0 = identical, 1 = unrelated"}
_CLUSTER = {"minimum": 0, "description": "number of the picture's cluster of near-identical pictures"}
_BRAND_VERDICT = {"description": "phishing-suspected: the query looks like a brand baseline but its "
                                 "domain is not one of the brand's; legitimate: it is one of them"}


@dataclass(frozen=True)
class Error:
    """Every error answer: one line saying why."""

    error: str


@dataclass(frozen=True)
class AlgorithmVote:
    """One algorithm's distance and vote for a pair."""

    distance: float = info(**_DISTANCE)
    decision: Vote = info()
    reason: Reason | None = optional(**_REASON)


@dataclass(frozen=True)
class Brand:
    """A brand and its own registrable domains (configured, plus the baselines' own domains)."""

    name: str = info()
    domains: list[str] = info(description="registrable domains, e.g. paypal.com")


@dataclass(frozen=True)
class Brands:
    """Every configured brand, by name."""

    brands: list[Brand] = info()


@dataclass(frozen=True)
class BrandDeleted:
    """A brand's configured domains removed (its baselines stay stored)."""

    name: str = info()
    status: Literal["deleted"] = info()


@dataclass(frozen=True)
class QueryBrand(Brand):
    """The brand the query looks like: that of the best match with a brand verdict."""

    match: str = info(**_ID)


@dataclass(frozen=True)
class InformationMeasures:
    """How much a picture shows, as the low-information detector measured it."""

    pdq_quality: int = info(minimum=0, maximum=100, description="PDQ's quality score")
    ink: float = info(minimum=0, maximum=1, description="share of pixels away from the background tone")
    entropy: float = info(minimum=0, description="grey-level entropy, bits")


@dataclass(frozen=True)
class Noise:
    """Why a picture is noise: never reported as a match, and nothing to tag or correlate."""

    reason: NoiseReason = info(description="marked (by an analyst), review (a review verdict), "
                                           "low-information (the detector), matches-noise (its best "
                                           "match is a noise picture)")
    picture: str | None = info(description="the noise picture matched (matches-noise), else null")
    at: float | None = optional(description="when a stored picture was marked, seconds since the epoch")
    measures: InformationMeasures | None = optional(description="the detector's measures (low-information)")


_NOISE = {"description": "present only when the picture is noise (see Noise); clients that do not know "
                         "it can ignore it: noise pictures are never among the matches"}


@dataclass(frozen=True)
class Match:
    """A stored picture compared with the query, with every algorithm's vote."""

    id: str = info(**_ID)
    name: str = info()
    distance: float = info(**_DISTANCE)
    decision: Decision = info()
    cluster: int = info(**_CLUSTER)
    tags: list[str] = info()
    algorithms: dict[str, AlgorithmVote] = info()
    reason: Reason | None = optional(**_REASON)
    brand: Brand | None = optional(description="the stored picture is this brand's baseline")
    verdict: BrandVerdict | None = optional(**_BRAND_VERDICT)


@dataclass(frozen=True)
class SearchAnswer:
    """Matches of a searched picture, best first (rejected ones only when asked)."""

    decision: Decision = info(description="best decision among the matches; rejected when none")
    matches: list[Match] = info()
    domains: list[str] | None = optional(description="the registrable domains the query was seen on, "
                                                     "when given")
    brand: QueryBrand | None = optional(description="the brand the query looks like, when a match has a "
                                                    "brand verdict")
    verdict: BrandVerdict | None = optional(**_BRAND_VERDICT)
    noise: Noise | None = optional(**_NOISE)


@dataclass(frozen=True)
class AddAnswer:
    """A picture added, or found already stored (same bytes)."""

    id: str = info(**_ID)
    name: str = info()
    status: Literal["added", "duplicate"] = info()
    cluster: int = info(**_CLUSTER)
    noise: Noise | None = optional(description="present when the picture is in the noise bank")


@dataclass(frozen=True)
class Picture:
    """A stored picture's record (its features are not sent)."""

    id: str = info(**_ID)
    name: str = info()
    tags: list[str] = info()
    metadata: dict = info(description="the JSON object given when added or patched, as is")
    added: str = info(format="date-time", description="when it was added, ISO 8601 UTC")
    size: int = info(description="bytes submitted")
    width: int = info(description="pixels, as submitted")
    height: int = info(description="pixels, as submitted")
    format: str = info(description="decoded format, e.g. PNG, JPEG; 'hashes' for a hash-only reference")
    cluster: int = info(**_CLUSTER)
    hash_only: bool | None = optional(description="true: a reference stored from a partner's hashes, "
                                                  "with no picture (never an accepted match)")
    noise: Noise | None = optional(description="present when the picture is in the noise bank")


@dataclass(frozen=True)
class Deleted:
    """A picture deleted with its features, index entry and cluster membership."""

    id: str = info(**_ID)
    status: Literal["deleted"] = info()


@dataclass(frozen=True)
class PictureMatches:
    """A stored picture's accepted and to-review matches, best first."""

    id: str = info(**_ID)
    matches: list[Match] = info()


@dataclass(frozen=True)
class JobQueued:
    """A batch job accepted; poll the ``Location`` header's URL."""

    job: str = info(pattern=ITEM_ID)
    status: Literal["queued"] = info()
    total: int = info(description="files in the job")


@dataclass(frozen=True)
class AddedFile(AddAnswer):
    """One file of an add job, added or found already stored."""

    file: str = info(description="the file's name as submitted")


@dataclass(frozen=True)
class SearchedFile(SearchAnswer):
    """One file of a search job."""

    file: str = info(description="the file's name as submitted")


@dataclass(frozen=True)
class FailedFile:
    """One file of a job that could not be added or searched; the others are not affected."""

    file: str = info(description="the file's name as submitted")
    status: Literal["error"] = info()
    error: str = info()


@dataclass(frozen=True)
class Job:
    """A batch job's state; its per-file results once done or failed, in submission order."""

    job: str = info(pattern=ITEM_ID)
    action: Literal["add", "search"] = info()
    status: Literal["queued", "running", "done", "failed"] = info()
    total: int = info()
    done: int = info()
    attempts: int = info()
    created: float = info(description="seconds since the epoch")
    updated: float = info(description="seconds since the epoch")
    error: str | None = optional(description="why the job failed")
    results: list[AddedFile | SearchedFile | FailedFile] | None = optional()


@dataclass(frozen=True)
class ReviewItem:
    """A to-review match queued for an analyst, with the algorithms' votes when it was searched."""

    item: str = info(pattern=ITEM_ID)
    query: str = info(**_ID)
    query_name: str = info()
    match: str = info(**_ID)
    match_name: str = info()
    distance: float = info(**_DISTANCE)
    algorithms: dict[str, AlgorithmVote] = info()
    recorded: float = info(description="seconds since the epoch")
    verdict: ReviewVerdict | None = info(description="the analyst's verdict; null while pending; noise: "
                                                      "the pair's stored pictures went to the noise bank")
    reviewed: float | None = optional(description="seconds since the epoch")
    evidence: Literal["hashes-only"] | None = optional(
        description="searched by a partner's hashes, not a picture: no query image")
    hashes: dict[str, str] | None = optional(description="the hashes searched for, {name: value}")


@dataclass(frozen=True)
class ReviewPage:
    """Pending items oldest first, or reviewed items newest first."""

    status: Literal["pending", "done"] = info()
    total: int = info()
    items: list[ReviewItem] = info()


@dataclass(frozen=True)
class Label:
    """A judged pair: the input of ``quaid calibrate``."""

    query: str = info(**_ID)
    match: str = info(**_ID)
    same: bool = info(description="the analyst's answer: the same picture")
    verdict: Verdict = info()
    distance: float = info(**_DISTANCE)
    algorithms: dict[str, AlgorithmVote] = info()


@dataclass(frozen=True)
class Labels:
    """Every judged pair."""

    labels: list[Label]


@dataclass(frozen=True)
class ExchangedHashes:
    """A picture's hashes as partners' tools compute and write them (``quaid hash``)."""

    ahash: str = info(pattern=r"^[0-9a-f]{16}$", description="ImageHash average_hash, str()")
    phash: str = info(pattern=r"^[0-9a-f]{16}$", description="ImageHash phash, str()")
    dhash: str = info(pattern=r"^[0-9a-f]{16}$", description="ImageHash dhash, str()")
    whash: str = info(pattern=r"^[0-9a-f]{16}$", description="ImageHash whash (its defaults), str()")
    pdq: str | None = info(pattern=r"^[0-9a-f]{64}$",
                           description="as ThreatExchange's PDQ hasher writes it (hash bit 0 first); "
                                       "null for pictures of more than 8 bits a channel, which it refuses")
    pdq_quality: int | None = info(minimum=0, maximum=100)
    goldberg: list[int] = info(minItems=648, maxItems=648, description="image-match's signature")
    forbild: str = info(pattern=r"^[0-9A-F]{64}$", description="256 bits row-major, most significant first")
    phash_dct_base64: str = info(pattern=r"^[A-Za-z0-9+/]{11}=$",
                                 description="perception's pHash (cert-pl-phishing's phash-dct-base64)")
    tlsh: str | None = info(description="T1 digest of the normalised pixels; null when TLSH refuses")


@dataclass(frozen=True)
class HashSearchAnswer:
    """Stored pictures near a partner's hashes, best first; never accepted (hashes cannot tell
    template siblings apart), each match with ``reason: hashes-only``."""

    decision: Literal["to-review", "rejected"] = info(description="best decision among the matches")
    evidence: Literal["hashes-only"] = info(description="what the decision rests on")
    compared: list[str] = info(description="the given hashes compared with stored features")
    matches: list[Match] = info(description="per match, algorithms holds each compared hash's vote")
    domains: list[str] | None = optional(description="the registrable domains the hashed page was seen on, "
                                                     "when given")
    brand: QueryBrand | None = optional(description="the brand the page looks like, when a match has a "
                                                    "brand verdict")
    verdict: BrandVerdict | None = optional(**_BRAND_VERDICT)
    noise: Noise | None = optional(**_NOISE)


@dataclass(frozen=True)
class HashImportLine:
    """One line of an imported hash list: stored (or already stored), or why not."""

    line: int = info(minimum=1)
    id: str | None = optional(**_ID)
    name: str | None = optional()
    status: Literal["added", "duplicate"] | None = optional()
    error: str | None = optional(description="why this line was not stored")


@dataclass(frozen=True)
class HashImportAnswer:
    """The result of each line of a partner's hash list (a bad line fails alone)."""

    added: int = info()
    duplicate: int = info()
    failed: int = info()
    results: list[HashImportLine] = info()


@dataclass(frozen=True)
class HashRecord:
    """One picture file's id and exchanged hashes; nothing is stored."""

    file: str = info()
    id: str = info(**_ID)
    hashes: ExchangedHashes = info()


@dataclass(frozen=True)
class EarlierMatch:
    """An earlier picture a new one matched."""

    id: str = info(**_ID)
    name: str = info()
    decision: Decision = info()
    distance: float = info(**_DISTANCE)
    reason: Reason | None = optional(**_REASON)


@dataclass(frozen=True)
class MatchEvent:
    """A picture added, and the earlier pictures it matched (accepted or to-review), best first."""

    event: str = info(pattern=r"^[0-9]+-[0-9]+$", description="position of this event: read after it next")
    id: str = info(**_ID)
    name: str = info()
    cluster: int = info(**_CLUSTER)
    added: str = info(format="date-time", description="when the new picture was added, ISO 8601 UTC")
    tags: list[str] = info()
    metadata: dict = info(description="the new picture's metadata when it was added")
    matches: list[EarlierMatch] = info()


@dataclass(frozen=True)
class MatchEventPage:
    """Match events after a position, oldest first."""

    events: list[MatchEvent] = info()
    next: str = info(pattern=r"^[0-9]+-[0-9]+$", description="the position to read after next time")
    missed: bool = info(description="true when events after the position were dropped (the stream is "
                                    "capped) before being read: catch up another way, then go on from next")


@dataclass(frozen=True)
class Live:
    """The process serves requests."""

    status: Literal["alive"] = info()
    version: str = info()
    uptime: float = info(description="seconds since the process started")


@dataclass(frozen=True)
class Stats:
    """Counts of the store."""

    pictures: int = info()
    clusters: int = info()
    noise: int = info(description="pictures in the noise bank")
    store_bytes: int = info(description="memory used by Redis")
    index_backend: str = info()
    redis: str = info(description="where the store is (credentials removed)")
    bulk_store: str = info(description="where large per-picture data (verifier features, thumbnails) is kept")
    disk_bytes: int | None = optional(description="disk used by the embedded Redis")
    bulk_bytes: int | None = optional(description="disk used by the local disk tier")


@dataclass(frozen=True)
class Ready:
    """The store answers and the engine is loaded."""

    status: Literal["ready"] = info()
    version: str = info()
    stats: Stats = info()
    jobs_queued: int = info()
    max_upload_bytes: int = info()
    auth: bool = info(description="true when API keys are required")


@dataclass(frozen=True)
class Unavailable:
    """The store does not answer (``/status`` only; other endpoints answer :class:`Error`)."""

    status: Literal["unavailable"] = info()
    error: str = info()


@dataclass(frozen=True)
class NoiseList:
    """Pictures in the noise bank, most recently marked first."""

    total: int = info(description="pictures in the noise bank")
    offset: int = info(minimum=0)
    pictures: list[Picture] = info()


def answer(model: type, data: Any, status: int = 200) -> Response:
    """The JSON response of ``data`` built as ``model``: the only way a view sends a JSON body."""
    response = jsonify(dump(build(model, data)))
    response.status_code = status
    return response


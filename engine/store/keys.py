"""Every Redis key quaid uses, from named templates in one place.

Cluster-safe from the first line: all keys of one picture carry the same
hash tag ``{<id>}``, so they live in one Redis Cluster slot and the one script that
writes or deletes a picture touches a single slot. Global keys (the change stream,
the cluster counter) are single keys written by single commands; nothing ever spans
two slots in one transaction or script.

Layout (``<id>`` is the picture's SHA-256 hex):

=====================================  ======  ==================================================
key                                    type    content
=====================================  ======  ==================================================
``quaid:picture:{<id>}``               hash    the record: name, tags, metadata (JSON), added, ...,
                                               ``versions`` (JSON: algorithm -> feature version)
``quaid:features:{<id>}``              hash    one field per algorithm: the feature bytes
``quaid:codes:{<id>}``                 hash    one field per prefilter code: packed bits (index)
``quaid:image:{<id>}``                 hash    ``data`` (original or thumbnail bytes), ``type``
``quaid:changes``                      stream  ``op`` (add/delete/update) and ``id``, for index sync
``quaid:events:matches``               stream  a new picture and the earlier ones it matched (connectors)
``quaid:clusters:next``                string  counter giving new cluster numbers
``quaid:store:id``                     string  the store's random id (index snapshots name their store)
``quaid:tier``                         string  where large values live (engine.store.tier)
``quaid:brands``                       hash    brand -> its own domains (engine.brands)
``quaid:noise``                        zset    the noise bank's index: picture id -> time marked (the
                                               mark itself is the record's ``noise`` field)
=====================================  ======  ==================================================
"""

from __future__ import annotations

PREFIX = "quaid"

PICTURE = PREFIX + ":picture:{{{id}}}"
FEATURES = PREFIX + ":features:{{{id}}}"
CODES = PREFIX + ":codes:{{{id}}}"
IMAGE = PREFIX + ":image:{{{id}}}"
CHANGES = PREFIX + ":changes"
MATCH_EVENTS = PREFIX + ":events:matches"
WEBHOOK_POSITION = PREFIX + ":events:webhook:position"  # string: last match event the webhook URL accepted
WEBHOOK_LOCK = PREFIX + ":events:webhook:lock"  # string: token of the one process sending to the webhook
CLUSTER_COUNTER = PREFIX + ":clusters:next"
STORE_ID = PREFIX + ":store:id"
NOISE = PREFIX + ":noise"

CODES_PATTERN = PREFIX + ":codes:*"
PICTURE_PATTERN = PREFIX + ":picture:*"


def picture(picture_id: str) -> str:
    return PICTURE.format(id=picture_id)


def features(picture_id: str) -> str:
    return FEATURES.format(id=picture_id)


def codes(picture_id: str) -> str:
    return CODES.format(id=picture_id)


def image(picture_id: str) -> str:
    return IMAGE.format(id=picture_id)


def picture_keys(picture_id: str) -> list[str]:
    """The keys one picture owns, in the order the store's scripts expect them."""
    return [picture(picture_id), features(picture_id), codes(picture_id), image(picture_id)]


def id_of(key: str | bytes) -> str:
    """The picture id inside any per-picture key (the text between the braces)."""
    text = key.decode() if isinstance(key, bytes) else key
    start, end = text.index("{") + 1, text.rindex("}")
    return text[start:end]


# --- service (engine/service): batch jobs and the review queue ------------------------
# A job's keys share the hash tag {<job>} (one slot, written in one MULTI); the job
# stream and the review indexes are single keys, never in a transaction with others.
# On a Redis Cluster the job stream is therefore one hot key on one master (every
# submit, claim and ack of every worker goes there; a few commands per job, not per
# file). Job writes do not use the replica wait of engine.store.cluster: a job
# submitted in the milliseconds before its master dies can be lost in the failover
# (its status then answers 404 and the client resubmits); the pictures a job adds
# go through the store's write path and are replicated before they count as added.

JOB_STREAM = PREFIX + ":jobs"  # stream: one entry {job} per queued job, consumer group below
JOB_GROUP = "quaid-workers"
JOB = PREFIX + ":job:{{{id}}}"  # hash: action, status, total, done, attempts, names, options, times
JOB_FILES = PREFIX + ":job:{{{id}}}:files"  # hash: file index -> bytes (deleted when finished)
JOB_RESULTS = PREFIX + ":job:{{{id}}}:results"  # hash: file index -> JSON result
JOBS_IN_FLIGHT = PREFIX + ":jobs:caller:{{{id}}}"  # sorted set: unfinished jobs of one caller -> time
REVIEW_ITEM = PREFIX + ":review:item:{{{id}}}"  # hash: one to-review match, query thumbnail, verdict
REVIEW_PENDING = PREFIX + ":review:pending"  # sorted set: item -> time recorded
REVIEW_DONE = PREFIX + ":review:done"  # sorted set: item -> time reviewed
REVIEW_QUERY = PREFIX + ":review:query:{{{id}}}"  # hash: orientation -> the searched picture's ORB feature
REVIEW_QUERIES = PREFIX + ":review:queries"  # sorted set: searched pictures whose features are kept -> time


def job(job_id: str) -> str:
    return JOB.format(id=job_id)


def job_files(job_id: str) -> str:
    return JOB_FILES.format(id=job_id)


def job_results(job_id: str) -> str:
    return JOB_RESULTS.format(id=job_id)


def jobs_in_flight(caller: str) -> str:
    return JOBS_IN_FLIGHT.format(id=caller)


def review_item(item_id: str) -> str:
    return REVIEW_ITEM.format(id=item_id)


def review_query(query_id: str) -> str:
    return REVIEW_QUERY.format(id=query_id)


# --- brands (engine/brands): each brand's own registrable domains ----------------------
# One hash, written by single commands (HSET/HDEL), read with one HMGET per search.

BRANDS = PREFIX + ":brands"  # hash: brand name (case-folded) -> JSON {"name", "domains"}

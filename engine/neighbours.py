"""The matches of a picture already in the store, for the web UI's picture page.

Computed from the stored features the way the graph export scores its edges: the candidate
index proposes a shortlist from the picture's codes, each candidate is compared with every
enabled algorithm, and the ones not rejected are kept, best first. No picture bytes are
needed, so it works whatever the server keeps of the originals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.decision import Decision
from engine.errors import NotFound

if TYPE_CHECKING:
    from engine.core import Quaid

SHORTLIST = 50  # candidates scored for one picture's page


def stored_matches(quaid: Quaid, picture_id: str, top: int) -> list[dict]:
    """Accepted and to-review matches of stored picture ``picture_id``, best first, at most ``top``."""
    from engine.core import StoredQuery
    from engine.hash_search import hash_only_verdict
    from engine.matching import closest_accepted

    features = quaid.records.features_many([picture_id]).get(picture_id)
    if not features:
        raise NotFound(f"no picture with id {picture_id}")
    query = StoredQuery(quaid.matcher, features)
    quaid.mirror.sync()
    codes = {name: [code] for name, code in quaid.matcher.prefilter_codes(features).items()}
    others = [c.id for c in quaid.mirror.shortlist(codes, SHORTLIST + 1) if c.id != picture_id]
    stored = quaid.records.features_many(others)
    verdicts = {i: quaid.matcher.compare(query, {k: v for k, v in f.items() if k in features})
                for i, f in stored.items()}
    kept = [i for i, v in verdicts.items() if v.decision != Decision.REJECTED]
    records = quaid.records.get_many(kept + [picture_id])
    subject = records.get(picture_id)
    for i in kept:  # a hash-only reference on either side: at best to-review (engine.hash_search)
        if i in records and (records[i].hash_only or (subject is not None and subject.hash_only)):
            verdicts[i] = hash_only_verdict(verdicts[i])
    # rejected ones, and noise pictures (never reported as matches: engine.noise)
    kept = [i for i in kept if verdicts[i].decision != Decision.REJECTED
            and i in records and records[i].noise is None]
    verdicts.update(closest_accepted({i: verdicts[i] for i in kept if i in records},
                                     {i: records[i].cluster for i in kept if i in records}))
    kept.sort(key=lambda i: (verdicts[i].decision.rank, verdicts[i].distance, i))
    return [{"id": i, "name": records[i].name, "cluster": records[i].cluster, "tags": list(records[i].tags),
             **verdicts[i].to_json()} for i in kept[:top] if i in records]

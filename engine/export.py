"""Export of the store for other tools: plain JSON, and a graph for graph viewers.

The graph's nodes are pictures; its edges join each picture to the neighbours the
candidate index proposes for it (``GRAPH_NEIGHBOURS`` per picture), scored by every
algorithm from the stored features, and kept when not rejected: the same evidence a
search would show. ``clusters`` lists the stored clusters (assigned at add time);
``components`` lists the connected components of the accepted edges
(:func:`engine.clusters.group`), which is what a fresh re-clustering would give.
Cost: one shortlist and up to ``GRAPH_NEIGHBOURS`` comparisons per picture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.clusters import group
from engine.decision import Decision
from engine.hash_search import hash_only_decision
from engine.store.records import HASH_ONLY_REASON

if TYPE_CHECKING:
    from engine.core import Quaid

GRAPH_NEIGHBOURS = 10  # candidate neighbours scored per picture
_BATCH = 500  # records fetched per pipeline


def export_json(quaid: Quaid) -> dict:
    """``{"pictures": [record...], "clusters": [{cluster, representative, size, members}]}``."""
    ids = quaid.mirror.index.ids()
    pictures = []
    for start in range(0, len(ids), _BATCH):
        records = quaid.records.get_many(ids[start: start + _BATCH])
        pictures.extend(r.to_json() for r in records.values())
    clusters = [{**info.to_json(), "members": quaid.mirror.clusters.members(info.cluster)}
                for info in quaid.mirror.clusters.all()]
    return {"pictures": pictures, "clusters": clusters}


def export_graph(quaid: Quaid) -> dict:
    """``{"nodes": [...], "edges": [{source, target, distance, decision, algorithms}], "clusters",
    "components"}``."""
    from engine.core import StoredQuery

    ids = quaid.mirror.index.ids()
    representatives = {info.representative for info in quaid.mirror.clusters.all()}
    nodes, edges, seen, hash_only = [], [], set(), set()
    for start in range(0, len(ids), _BATCH):
        batch = ids[start: start + _BATCH]
        records, stored = quaid.records.get_many(batch), quaid.records.features_many(batch)
        hash_only |= {ident for ident, record in records.items() if record.hash_only}
        for ident, record in records.items():
            features = stored.get(ident, {})
            nodes.append({"id": ident, "name": record.name, "cluster": record.cluster,
                          "representative": ident in representatives, "tags": list(record.tags)})
            edges.extend(_edges(quaid, StoredQuery(quaid.matcher, features), ident, features, seen))
    for edge in edges:  # a hash-only reference on either end: judged by its hashes alone (engine.hash_search)
        if hash_only & {edge["source"], edge["target"]}:
            distances = {name: vote["distance"] for name, vote in edge["algorithms"].items()}
            edge.update(decision=hash_only_decision(distances).value, reason=HASH_ONLY_REASON)
    edges = [e for e in edges if e["decision"] != Decision.REJECTED.value]
    accepted = [(e["source"], e["target"]) for e in edges if e["decision"] == Decision.ACCEPTED.value]
    clusters = [{**info.to_json(), "members": quaid.mirror.clusters.members(info.cluster)}
                for info in quaid.mirror.clusters.all()]
    return {"nodes": nodes, "edges": edges, "clusters": clusters,
            "components": group((n["id"] for n in nodes), accepted)}


def _edges(quaid: Quaid, query, ident: str, features: dict[str, bytes], seen: set) -> list[dict]:
    """Scored edges from ``ident`` to its index neighbours, each unordered pair once."""
    codes = {name: [code] for name, code in quaid.matcher.prefilter_codes(features).items()}
    neighbours = []
    for candidate in quaid.mirror.shortlist(codes, GRAPH_NEIGHBOURS + 1):
        pair = (min(ident, candidate.id), max(ident, candidate.id))
        if candidate.id != ident and pair not in seen:
            seen.add(pair)
            neighbours.append(candidate.id)
    out = []
    for other, stored in quaid.records.features_many(neighbours).items():
        comparable = {k: v for k, v in stored.items() if k in features}
        verdict = quaid.matcher.compare(query, comparable)
        if verdict.decision != Decision.REJECTED:
            out.append({"source": ident, "target": other, **verdict.to_json()})
    return out

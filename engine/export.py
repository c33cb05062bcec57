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
            edges.extend(scored_edges(quaid, StoredQuery(quaid.matcher, features), ident, features, seen,
                                      hash_only=hash_only))
    accepted = [(e["source"], e["target"]) for e in edges if e["decision"] == Decision.ACCEPTED.value]
    clusters = [{**info.to_json(), "members": quaid.mirror.clusters.members(info.cluster)}
                for info in quaid.mirror.clusters.all()]
    return {"nodes": nodes, "edges": edges, "clusters": clusters,
            "components": group((n["id"] for n in nodes), accepted)}


def scored_edges(quaid: Quaid, query, ident: str, features: dict[str, bytes], seen: set,
                 drawn: dict[str, dict[str, bytes]] | None = None,
                 neighbours: int = GRAPH_NEIGHBOURS, hash_only: set[str] | None = None) -> list[dict]:
    """Scored, not rejected edges from ``ident`` to its ``neighbours`` nearest index neighbours,
    each unordered pair once (``seen`` holds the pairs already scored). With ``drawn`` (id ->
    stored features), only neighbours among those, compared with the features given. An edge
    with a hash-only reference (``hash_only`` ids) on either end is judged by its hashes alone
    (:mod:`engine.hash_search`): hashes cannot tell sibling pages apart."""
    codes = {name: [code] for name, code in quaid.matcher.prefilter_codes(features).items()}
    chosen = []
    for candidate in quaid.mirror.shortlist(codes, neighbours + 1):
        pair = (min(ident, candidate.id), max(ident, candidate.id))
        if drawn is not None and candidate.id not in drawn:
            continue
        if candidate.id != ident and pair not in seen:
            seen.add(pair)
            chosen.append(candidate.id)
    found = {i: drawn[i] for i in chosen} if drawn is not None else quaid.records.features_many(chosen)
    out = []
    for other, stored in found.items():
        comparable = {k: v for k, v in stored.items() if k in features}
        edge = {"source": ident, "target": other, **quaid.matcher.compare(query, comparable).to_json()}
        if hash_only and hash_only & {ident, other}:
            distances = {name: vote["distance"] for name, vote in edge["algorithms"].items()}
            edge.update(decision=hash_only_decision(distances).value, reason=HASH_ONLY_REASON)
        if edge["decision"] != Decision.REJECTED.value:
            out.append(edge)
    return out

"""One page of the store's graph, for the web UI's graph view: whole clusters, capped.

Why a page: the full graph export (:mod:`engine.export`) scores every picture's neighbours,
which takes seconds per thousand pictures, and a browser drawing thousands of nodes and their
labels stops answering. A page holds whole clusters, largest first, starting at cluster rank
``offset``, until ``limit`` pictures are drawn (a cluster larger than the cap is cut to it and
marked); its edges join drawn pictures only, scored as the export scores them but from each
picture's ``PAGE_NEIGHBOURS`` nearest index neighbours. ``next`` is the rank of the first
cluster of the following page, or None on the last one.
Cost: up to ``PAGE_NEIGHBOURS`` comparisons per drawn picture (a few ms each, with ORB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.export import scored_edges

if TYPE_CHECKING:
    from engine.clusters import ClusterInfo
    from engine.core import Quaid

DEFAULT_LIMIT = 300  # pictures drawn per page: a layout and hover stay instant in a browser
PAGE_NEIGHBOURS = 6  # nearest index neighbours scored per drawn picture (each may cost an ORB check)
MAX_LIMIT = 1000


def graph_page(quaid: Quaid, offset: int = 0, limit: int = DEFAULT_LIMIT) -> dict:
    """``{"nodes", "edges", "pictures", "clusters", "offset", "shown_clusters", "cut", "next"}``."""
    from engine.core import StoredQuery

    quaid.mirror.sync()
    infos = quaid.mirror.clusters.all()
    chosen, members = _page_of(quaid, infos[offset:], limit)
    drawn = [i for group in members for i in group]
    records, stored = quaid.records.get_many(drawn), quaid.records.features_many(drawn)
    seen, edges = set(), []
    hash_only = {ident for ident, record in records.items() if record.hash_only}
    for ident in drawn:
        features = stored.get(ident)
        if features:
            query = StoredQuery(quaid.matcher, features)
            edges.extend(scored_edges(quaid, query, ident, features, seen, stored, PAGE_NEIGHBOURS,
                                      hash_only=hash_only))
    representatives = {info.representative for info in chosen}
    nodes = [{"id": i, "name": records[i].name, "cluster": records[i].cluster,
              "representative": i in representatives, "tags": list(records[i].tags)}
             for i in drawn if i in records]
    following = offset + len(chosen)
    cut = [info.cluster for info, group in zip(chosen, members, strict=True) if len(group) < info.size]
    return {"nodes": nodes, "edges": edges, "pictures": len(quaid.mirror.index), "clusters": len(infos),
            "offset": offset, "shown_clusters": len(chosen),
            "cut": cut,
            "next": following if following < len(infos) else None}


def _page_of(quaid: Quaid, infos: list[ClusterInfo], limit: int) -> tuple[list[ClusterInfo], list[list[str]]]:
    """Clusters from the start of ``infos`` whose members fit in ``limit`` (the first one always,
    cut to the limit when larger)."""
    chosen, members, count = [], [], 0
    for info in infos:
        if chosen and count + info.size > limit:
            break
        group = quaid.mirror.clusters.members(info.cluster)[: limit - count]
        chosen.append(info)
        members.append(group)
        count += len(group)
    return chosen, members

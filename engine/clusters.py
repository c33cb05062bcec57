"""Clusters of near-identical pictures, each with a representative (douglas-quaid's idea).

Assignment happens at add time from the search the add already runs (the index
shortlist scored by every algorithm), never from a scan of all clusters: a new
picture joins the cluster of its best *accepted* match, else founds a new cluster
(:func:`choose_cluster`). The cluster number is stored in the picture's record, so
membership is written by the same single-slot script that writes the picture.

Everything else is derived, not stored: the members of a cluster are the pictures
whose record names it, and its representative is the earliest-added member (ties
broken by id). Deleting a picture therefore removes it from its cluster, moves the
representative to the next-oldest member when needed, and makes an emptied cluster
disappear, with no extra write that could go out of step. :class:`ClusterMap` keeps
this view in memory (fed by :mod:`engine.store.mirror`).

:func:`group` is the pure batch form (thorn's perception clusters the same way):
connected components of the "accepted" graph, for re-clustering and export.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.decision import Decision


@dataclass(frozen=True)
class ClusterInfo:
    cluster: int
    representative: str
    size: int

    def to_json(self) -> dict:
        return {"cluster": self.cluster, "representative": self.representative, "size": self.size}


def choose_cluster(matches: Iterable[tuple[int, Decision, float]]) -> int | None:
    """Cluster of the best accepted match among ``(cluster, decision, distance)``; None when none."""
    accepted = [(distance, cluster) for cluster, decision, distance in matches
                if decision == Decision.ACCEPTED]
    return min(accepted)[1] if accepted else None


def group(ids: Iterable[str], pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components of the graph (ids, pairs), each sorted, largest first (union-find)."""
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    for a, b in pairs:
        if a in parent and b in parent:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    components: dict[str, list[str]] = {}
    for ident in parent:
        components.setdefault(find(ident), []).append(ident)
    return sorted((sorted(c) for c in components.values()), key=lambda c: (-len(c), c[0]))


class ClusterMap:
    """In-memory membership: picture -> cluster, cluster -> members, and representatives."""

    def __init__(self) -> None:
        self._of: dict[str, tuple[int, float]] = {}
        self._members: dict[int, dict[str, float]] = {}
        self._representative: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._members)

    def set(self, picture_id: str, cluster: int, added: float) -> None:
        """Record that a picture (added at ``added``, epoch seconds) belongs to ``cluster``."""
        if self._of.get(picture_id) == (cluster, added):
            return
        self.remove(picture_id)
        self._of[picture_id] = (cluster, added)
        self._members.setdefault(cluster, {})[picture_id] = added
        current = self._representative.get(cluster)
        if current is None or (added, picture_id) < (self._members[cluster][current], current):
            self._representative[cluster] = picture_id

    def remove(self, picture_id: str) -> int | None:
        """Forget a picture; returns the cluster it was in. Empty clusters disappear."""
        entry = self._of.pop(picture_id, None)
        if entry is None:
            return None
        cluster = entry[0]
        members = self._members[cluster]
        del members[picture_id]
        if not members:
            del self._members[cluster], self._representative[cluster]
        elif self._representative[cluster] == picture_id:
            self._representative[cluster] = min(members, key=lambda i: (members[i], i))
        return cluster

    def cluster_of(self, picture_id: str) -> int | None:
        entry = self._of.get(picture_id)
        return entry[0] if entry else None

    def members(self, cluster: int) -> list[str]:
        """Members oldest first (the representative first)."""
        members = self._members.get(cluster, {})
        return sorted(members, key=lambda i: (members[i], i))

    def info(self, cluster: int) -> ClusterInfo | None:
        if cluster not in self._members:
            return None
        return ClusterInfo(cluster, self._representative[cluster], len(self._members[cluster]))

    def all(self) -> list[ClusterInfo]:
        """Every cluster, largest first."""
        infos = [ClusterInfo(c, self._representative[c], len(m)) for c, m in self._members.items()]
        return sorted(infos, key=lambda i: (-i.size, i.cluster))

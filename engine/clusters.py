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
this view in memory (fed by :mod:`engine.store.mirror`), in numpy arrays rather than Python
objects (~34 bytes per picture besides its interned id, see :mod:`engine.keytable`): per
picture slot its cluster slot, time added and the next member of its cluster; per cluster
slot its number, size, representative and first member. The members of a cluster are a
linked list through those slots, so listing a cluster and deleting its representative cost
the cluster's size, not the number of stored pictures.

:func:`group` is the pure batch form (thorn's perception clusters the same way):
connected components of the "accepted" graph, for re-clustering and export.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.decision import Decision
from engine.keytable import CLUSTERS, IdTable, KeyTable, grown


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


def _key(cluster: int) -> bytes:
    return int(cluster).to_bytes(8, "little", signed=True)


class ClusterMap:
    """In-memory membership: picture -> cluster, cluster -> members, and representatives.

    ``ids`` may be shared with the :class:`engine.index.CandidateIndex` (the mirror does).
    """

    def __init__(self, ids: IdTable | None = None) -> None:
        self._ids = IdTable() if ids is None else ids
        self._cluster_of = np.zeros(0, dtype=np.int32)  # picture slot -> cluster slot, -1 none
        self._added = np.zeros(0, dtype=np.float64)  # picture slot -> time added (epoch s)
        self._clusters = KeyTable(8)  # cluster number -> cluster slot
        self._size = np.zeros(0, dtype=np.int32)  # cluster slot -> members
        self._representative = np.zeros(0, dtype=np.int32)  # cluster slot -> picture slot
        self._head = np.zeros(0, dtype=np.int32)  # cluster slot -> a member's picture slot, -1 none
        self._next = np.zeros(0, dtype=np.int32)  # picture slot -> next member of its cluster, -1 last

    def __len__(self) -> int:
        return len(self._clusters)

    def set(self, picture_id: str, cluster: int, added: float) -> None:
        """Record that a picture (added at ``added``, epoch seconds) belongs to ``cluster``."""
        slot = self._ids.find(picture_id, CLUSTERS)
        if slot >= 0 and self._number(int(self._cluster_of[slot])) == cluster and self._added[slot] == added:
            return
        self.remove(picture_id)
        slot = self._ids.acquire(picture_id, CLUSTERS)[0]
        where, new = self._clusters.add(_key(cluster))
        self._make_room()
        if new:
            self._size[where], self._representative[where], self._head[where] = 0, -1, -1
        self._cluster_of[slot], self._added[slot] = where, added
        self._link(np.array([slot], np.int32), np.array([where], np.int32))
        self._size[where] += 1
        current = int(self._representative[where])
        if current < 0 or (added, picture_id) < (float(self._added[current]), self._ids.name(current)):
            self._representative[where] = slot

    def _make_room(self) -> None:
        """Grow the per-cluster and per-picture arrays to the key tables' capacities."""
        self._size = grown(self._size, self._clusters.capacity)
        self._representative = grown(self._representative, self._clusters.capacity, -1)
        self._head = grown(self._head, self._clusters.capacity, -1)
        self._cluster_of = grown(self._cluster_of, self._ids.capacity, -1)
        self._added = grown(self._added, self._ids.capacity)
        self._next = grown(self._next, self._ids.capacity, -1)

    def _link(self, slots: np.ndarray, where: np.ndarray) -> None:
        """Put picture ``slots`` at the front of the member lists of cluster slots ``where``
        (pairwise), vectorised: within each cluster the new ones point to each other, the last
        of them to the cluster's former first member."""
        if not len(slots):
            return
        order = np.argsort(where, kind="stable")
        slots, where = slots[order], where[order]
        starts = np.ones(len(slots), bool)
        starts[1:] = where[1:] != where[:-1]
        ends = np.roll(starts, -1)
        following = np.roll(slots, -1)
        following[ends] = self._head[where[ends]]
        self._next[slots] = following
        self._head[where[starts]] = slots[starts]

    def extend(self, entries: Sequence[tuple[str, int, float]]) -> None:
        """:meth:`set` of many ``(picture id, cluster, time added)`` at once (index rebuild), vectorised.

        Pictures already held (or named twice) go through :meth:`set` after the rest.
        """
        first: dict[str, tuple[int, float]] = {}
        again = []
        for picture_id, cluster, added in entries:
            if picture_id in first:
                again.append((picture_id, cluster, added))
            else:
                first[picture_id] = (cluster, added)
        names = list(first)
        slots, fresh = self._ids.acquire_many(names, CLUSTERS)
        chosen = np.flatnonzero(fresh)
        again[:0] = [(names[n], *first[names[n]]) for n in np.flatnonzero(~fresh).tolist()]
        names = [names[n] for n in chosen.tolist()]
        slots = slots[chosen]
        numbers = np.array([first[name][0] for name in names], dtype="<i8")
        added = np.array([first[name][1] for name in names], dtype=np.float64)
        clusters, inverse = np.unique(numbers, return_inverse=True)
        where, new = self._clusters.add_many(clusters.view(np.uint8).reshape(-1, 8))
        self._make_room()
        self._size[where[new]], self._representative[where[new]], self._head[where[new]] = 0, -1, -1
        self._cluster_of[slots], self._added[slots] = where[inverse], added
        self._link(slots.astype(np.int32), where[inverse].astype(np.int32))
        np.add.at(self._size, where[inverse], 1)
        oldest = {}  # cluster index -> batch position of its oldest new member (ties by id)
        for n in sorted(range(len(names)), key=lambda n: (added[n], names[n])):
            oldest.setdefault(int(inverse[n]), n)
        for position, n in oldest.items():
            current = int(self._representative[where[position]])
            if current < 0 or (added[n], names[n]) < (float(self._added[current]), self._ids.name(current)):
                self._representative[where[position]] = slots[n]
        for picture_id, cluster, added_at in again:
            self.set(picture_id, cluster, added_at)

    def export(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """The membership of picture ``slots`` (all held here) as arrays, for an index snapshot:
        ``numbers`` of the clusters, each picture's ``cluster`` (a row of ``numbers``) and time
        ``added``, and each cluster's ``representative`` (a row of ``slots``)."""
        where = self._clusters.live()  # no sort anywhere: this runs under the mirror's lock
        number_of = np.full(self._clusters.capacity, -1, dtype=np.int32)
        number_of[where] = np.arange(len(where), dtype=np.int32)
        cluster = number_of[self._cluster_of[slots]]
        if (self._cluster_of[slots] < 0).any() or (cluster < 0).any():
            raise ValueError("a picture to export has no cluster")
        row_of = np.full(self._ids.capacity, -1, dtype=np.int32)
        row_of[slots] = np.arange(len(slots), dtype=np.int32)
        representative = row_of[self._representative[where]]
        if (representative < 0).any():
            raise ValueError("a cluster's representative is not among the pictures exported")
        return {"numbers": self._clusters.keys(where).view("<i8").ravel().copy(),
                "cluster": cluster, "added": self._added[slots].copy(), "representative": representative}

    def load(self, slots: np.ndarray, numbers: np.ndarray, cluster: np.ndarray, added: np.ndarray,
             representative: np.ndarray) -> None:
        """Fill an empty map from :meth:`export`'s arrays, for pictures now at ``slots`` of the
        shared id table (loaded there by the candidate index)."""
        if len(self._clusters):
            raise ValueError("only an empty cluster map can be loaded")
        self._ids.share(slots, CLUSTERS)
        where, _ = self._clusters.add_many(numbers.astype("<i8").view(np.uint8).reshape(-1, 8))
        self._make_room()
        self._cluster_of[slots], self._added[slots] = where[cluster], added
        self._head[where] = -1
        self._link(np.asarray(slots, np.int32), where[cluster].astype(np.int32))
        self._size[where] = np.bincount(cluster, minlength=len(numbers))
        self._representative[where] = slots[representative]

    def remove(self, picture_id: str) -> int | None:
        """Forget a picture; returns the cluster it was in. Empty clusters disappear."""
        slot = self._ids.find(picture_id, CLUSTERS)
        if slot < 0:
            return None
        where = int(self._cluster_of[slot])
        cluster = self._number(where)
        self._unlink(slot, where)
        self._cluster_of[slot] = -1
        self._ids.release(slot, CLUSTERS)
        self._size[where] -= 1
        if not self._size[where]:
            self._clusters.remove(_key(cluster))
        elif self._representative[where] == slot:
            self._representative[where] = self._member_slots(where)[0]
        return cluster

    def _unlink(self, slot: int, where: int) -> None:
        """Take picture ``slot`` out of the member list of cluster slot ``where`` (a walk of that
        list to find the member before it: at most the cluster's size)."""
        following = int(self._next[slot])
        if int(self._head[where]) == slot:
            self._head[where] = following
        else:
            before = int(self._head[where])
            while int(self._next[before]) != slot:
                before = int(self._next[before])
            self._next[before] = following
        self._next[slot] = -1

    def cluster_of(self, picture_id: str) -> int | None:
        slot = self._ids.find(picture_id, CLUSTERS)
        return self._number(int(self._cluster_of[slot])) if slot >= 0 else None

    def members(self, cluster: int) -> list[str]:
        """Members oldest first (the representative first)."""
        where = self._clusters.find(_key(cluster))
        return self._ids.names(self._member_slots(where)) if where >= 0 else []

    def info(self, cluster: int) -> ClusterInfo | None:
        where = self._clusters.find(_key(cluster))
        if where < 0:
            return None
        return ClusterInfo(cluster, self._ids.name(int(self._representative[where])), int(self._size[where]))

    def all(self) -> list[ClusterInfo]:
        """Every cluster, largest first."""
        where = self._clusters.live()
        numbers = self._clusters.keys(where).view("<i8").ravel().tolist()
        representatives = self._ids.names(self._representative[where].tolist())
        infos = [ClusterInfo(*item) for item in zip(numbers, representatives, self._size[where].tolist(),
                                                    strict=True)]
        return sorted(infos, key=lambda i: (-i.size, i.cluster))

    def _number(self, where: int) -> int:
        return int.from_bytes(self._clusters.key(where), "little", signed=True)

    def _member_slots(self, where: int) -> list[int]:
        """Picture slots of cluster slot ``where``, oldest first (ties by id)."""
        slots = []
        slot = int(self._head[where])
        while slot >= 0:
            slots.append(slot)
            slot = int(self._next[slot])
        return sorted(slots, key=lambda s: (float(self._added[s]), self._ids.name(s)))

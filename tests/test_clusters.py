"""Clusters: assignment at add time through the index, representatives, updates on delete."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.clusters import ClusterInfo, ClusterMap, choose_cluster, group
from engine.decision import Decision
from engine.index import CandidateIndex
from engine.keytable import IdTable
from tests.drawing import drawn, variant


def test_group_gives_connected_components_largest_first():
    components = group("abcdefg", [("a", "b"), ("b", "c"), ("e", "d"), ("f", "f"), ("a", "zzz")])
    assert components == [["a", "b", "c"], ["d", "e"], ["f"], ["g"]]


def test_choose_cluster_takes_the_best_accepted_match_only():
    matches = [(7, Decision.TO_REVIEW, 0.01), (3, Decision.ACCEPTED, 0.2), (5, Decision.ACCEPTED, 0.1)]
    assert choose_cluster(matches) == 5
    assert choose_cluster([(7, Decision.TO_REVIEW, 0.0), (8, Decision.REJECTED, 0.0)]) is None
    assert choose_cluster([]) is None


def test_cluster_map_representative_is_the_oldest_and_moves_on_delete():
    clusters = ClusterMap()
    clusters.set("young", 1, added=30.0)
    clusters.set("old", 1, added=10.0)
    clusters.set("middle", 1, added=20.0)
    clusters.set("alone", 2, added=5.0)
    assert clusters.info(1).representative == "old"
    assert clusters.members(1) == ["old", "middle", "young"]
    assert clusters.remove("old") == 1
    assert clusters.info(1).representative == "middle"
    assert clusters.info(1).size == 2
    clusters.remove("alone")
    assert clusters.info(2) is None
    assert [c.cluster for c in clusters.all()] == [1]
    clusters.set("middle", 3, added=20.0)  # moving a picture updates both clusters
    assert clusters.members(1) == ["young"] and clusters.members(3) == ["middle"]


def test_near_identical_pictures_share_a_cluster_and_others_do_not(quaid):
    first = quaid.add(drawn(1), name="original")
    copy = quaid.add(variant(drawn(1)), name="copy")
    smaller = quaid.add(variant(drawn(1), scale=0.5, quality=70), name="smaller copy")
    other = quaid.add(drawn(2), name="other")
    assert first.status == copy.status == smaller.status == other.status == "added"
    assert copy.cluster == first.cluster == smaller.cluster
    assert other.cluster != first.cluster
    listed = {c["cluster"]: c for c in quaid.clusters()}
    assert listed[first.cluster] == {"cluster": first.cluster, "representative": first.id, "size": 3}
    assert listed[other.cluster]["size"] == 1


def test_deleting_the_representative_elects_the_next_oldest_and_empty_clusters_vanish(quaid):
    first = quaid.add(drawn(3))
    second = quaid.add(variant(drawn(3)))
    other = quaid.add(drawn(4))
    quaid.delete(first.id)
    cluster = quaid.cluster(second.cluster)
    assert cluster["representative"] == second.id
    assert [m["id"] for m in cluster["members"]] == [second.id]
    quaid.delete(other.id)
    assert other.cluster not in {c["cluster"] for c in quaid.clusters()}
    third = quaid.add(variant(drawn(3), scale=0.6))
    assert third.cluster == second.cluster


def test_graph_export_has_scored_edges_inside_clusters(quaid):
    a = quaid.add(drawn(5))
    b = quaid.add(variant(drawn(5)))
    c = quaid.add(drawn(6))
    graph = quaid.export("graph")
    assert {n["id"] for n in graph["nodes"]} == {a.id, b.id, c.id}
    assert [n["representative"] for n in graph["nodes"] if n["id"] == a.id] == [True]
    edges = {frozenset((e["source"], e["target"])): e for e in graph["edges"]}
    assert edges[frozenset((a.id, b.id))]["decision"] == "accepted"
    assert all(c.id not in pair for pair in edges)
    assert sorted(map(sorted, graph["components"])) == sorted([sorted([a.id, b.id]), [c.id]])
    assert {x["cluster"]: x["size"] for x in graph["clusters"]} == {a.cluster: 2, c.cluster: 1}


class _ReferenceClusters:
    """The plain-dict model the compact ClusterMap must match: members sorted by (added, id)."""

    def __init__(self) -> None:
        self.of: dict[str, tuple[int, float]] = {}

    def members(self, cluster: int) -> list[str]:
        return sorted((i for i, (c, _) in self.of.items() if c == cluster), key=lambda i: (self.of[i][1], i))

    def infos(self) -> list[ClusterInfo]:
        numbers = {c for c, _ in self.of.values()}
        infos = [ClusterInfo(c, self.members(c)[0], len(self.members(c))) for c in numbers]
        return sorted(infos, key=lambda i: (-i.size, i.cluster))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 12), st.integers(-1, 2), st.integers(0, 5)),
                min_size=10, max_size=150), st.booleans())
def test_cluster_map_matches_a_plain_model_through_moves_and_deletes(ops, shared):
    """Random sets (new pictures, moves, equal times broken by id) and removes; optionally sharing ids."""
    ids = IdTable() if shared else None
    clusters, index, model = ClusterMap(ids), CandidateIndex("numpy", ids) if shared else None, \
        _ReferenceClusters()
    for put, n, cluster, added in ops:
        ident = f"{n:064x}" if n % 2 else f"picture-{n}"  # canonical SHA-256 hex ids and others
        if put:
            clusters.set(ident, cluster, float(added))
            model.of[ident] = (cluster, float(added))
            if index is not None:
                index.upsert(ident, {"dhash": bytes([n]) * 8})
        else:
            assert clusters.remove(ident) == model.of.pop(ident, (None,))[0]
            if index is not None and n % 3 == 0:
                index.remove(ident)
        assert clusters.all() == model.infos()
    assert len(clusters) == len({c for c, _ in model.of.values()})
    for cluster in range(-2, 4):
        assert clusters.members(cluster) == model.members(cluster)
        expected = [i for i in model.infos() if i.cluster == cluster]
        assert clusters.info(cluster) == (expected[0] if expected else None)
    for n in range(13):
        ident = f"{n:064x}" if n % 2 else f"picture-{n}"
        assert clusters.cluster_of(ident) == (model.of[ident][0] if ident in model.of else None)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(-2, 3), st.integers(0, 4)), max_size=60),
       st.integers(0, 60))
def test_bulk_extend_equals_one_set_after_another(entries, split):
    """Rebuild's bulk form, including pictures named twice and pictures already held."""
    entries = [(f"{n:064x}" if n % 3 else f"pic{n}", cluster, float(added)) for n, cluster, added in entries]
    one, bulk = ClusterMap(), ClusterMap()
    for entry in entries:
        one.set(*entry)
    bulk.extend(entries[:split])
    bulk.extend(entries[split:])
    assert bulk.all() == one.all() and len(bulk) == len(one)
    for cluster in range(-2, 4):
        assert bulk.members(cluster) == one.members(cluster)
    assert all(bulk.cluster_of(ident) == one.cluster_of(ident) for ident, _, _ in entries)
    for ident, _, _ in entries[::2]:  # the member lists the bulk form linked survive removals
        assert bulk.remove(ident) == one.remove(ident)
    assert bulk.all() == one.all()
    for cluster in range(-2, 4):
        assert bulk.members(cluster) == one.members(cluster)


class _NoScan(np.ndarray):
    """An array that refuses whole-array comparisons (a scan of every stored picture)."""

    def __eq__(self, other):
        if np.ndim(self) and self.size > 1:
            raise AssertionError("scanned every picture")
        return np.ndarray.__eq__(self, other)


def test_deleting_a_representative_walks_its_cluster_not_every_picture():
    clusters = ClusterMap()
    clusters.extend([(f"p{n}", n % 500, float(n)) for n in range(5000)])  # 500 clusters of 10
    clusters._cluster_of = clusters._cluster_of.view(_NoScan)
    assert clusters.info(7).representative == "p7"
    assert clusters.remove("p7") == 7
    assert clusters.info(7) == ClusterInfo(7, "p507", 9)
    assert clusters.members(7) == [f"p{n}" for n in range(507, 5000, 500)]
    assert clusters.remove("p2507") == 7 and clusters.members(7)[:3] == ["p507", "p1007", "p1507"]

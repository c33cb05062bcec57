"""Clusters: assignment at add time through the index, representatives, updates on delete."""

from __future__ import annotations

from engine.clusters import ClusterMap, choose_cluster, group
from engine.decision import Decision
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

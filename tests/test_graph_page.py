"""A page of the graph (:mod:`engine.graph_page`, the web UI's graph view) and a cluster's member
pages: whole clusters largest first, capped, edges between drawn pictures only."""

from __future__ import annotations

from engine.graph_page import graph_page
from tests.drawing import drawn, variant


def store(quaid) -> dict[str, list[str]]:
    """Clusters of 3, 2 and 1 pictures: name -> ids."""
    families = {}
    for seed, copies in ((11, 2), (12, 1), (13, 0)):
        original = drawn(seed)
        ids = [quaid.add(original, name=f"f{seed}").id]
        ids += [quaid.add(variant(original, 0.9 - 0.1 * c), name=f"f{seed}-{c}").id for c in range(copies)]
        families[f"f{seed}"] = ids
    return families


def test_pages_hold_whole_clusters_largest_first(quaid):
    families = store(quaid)
    first = graph_page(quaid, 0, 4)  # 3 fit, 3 + 2 do not: the pair waits for the next page
    assert {n["id"] for n in first["nodes"]} == set(families["f11"])
    assert first["shown_clusters"] == 1 and first["next"] == 1 and first["cut"] == []
    assert first["pictures"] == 6 and first["clusters"] == 3
    assert [n["representative"] for n in first["nodes"]] == [True, False, False]
    assert {frozenset((e["source"], e["target"])) for e in first["edges"] if e["decision"] == "accepted"} >= {
        frozenset((families["f11"][0], families["f11"][1]))}
    rest = graph_page(quaid, first["next"], 4)
    assert {n["id"] for n in rest["nodes"]} == set(families["f12"] + families["f13"])
    assert rest["next"] is None and rest["offset"] == 1
    drawn_ids = {n["id"] for n in rest["nodes"]}
    assert all(e["source"] in drawn_ids and e["target"] in drawn_ids for e in rest["edges"])


def test_a_cluster_larger_than_the_cap_is_cut_and_marked(quaid):
    families = store(quaid)
    page = graph_page(quaid, 0, 2)
    assert [n["id"] for n in page["nodes"]] == families["f11"][:2]
    assert page["cut"] == [page["nodes"][0]["cluster"]] and page["next"] == 1


def test_cluster_members_come_a_page_at_a_time(quaid):
    ids = store(quaid)["f11"]
    number = quaid.get(ids[0]).cluster
    assert [m["id"] for m in quaid.cluster(number)["members"]] == ids
    page = quaid.cluster(number, offset=1, limit=1)
    assert page["size"] == 3 and page["offset"] == 1 and [m["id"] for m in page["members"]] == ids[1:2]
    assert quaid.cluster(number, offset=3)["members"] == []

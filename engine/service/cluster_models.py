"""The JSON bodies of the cluster and graph endpoints (``/api/v1/clusters``, ``/api/v1/graph``,
``/api/v1/export``), as typed models like those of :mod:`engine.service.models`: the store seen
as groups of near-identical pictures rather than one picture at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.service.models import _CLUSTER, _DISTANCE, _ID, _REASON, AlgorithmVote, Decision, Picture, Reason
from engine.service.schema import info, optional


@dataclass(frozen=True)
class ClusterSummary:
    """A cluster of near-identical pictures; its representative is its oldest member."""

    cluster: int = info(**_CLUSTER)
    representative: str = info(**_ID)
    size: int = info()


@dataclass(frozen=True)
class Clusters:
    """Every cluster, largest first."""

    clusters: list[ClusterSummary]


@dataclass(frozen=True)
class ClusterDetail:
    """One cluster with one page of its members' records, oldest first."""

    cluster: int = info(**_CLUSTER)
    representative: str = info(**_ID)
    size: int = info(description="members in all; ``members`` holds those from ``offset`` on")
    offset: int = info(minimum=0, description="position of the first member sent, oldest first")
    members: list[Picture] = info()


@dataclass(frozen=True)
class ClusterMembers:
    """One cluster with its members' ids."""

    cluster: int = info(**_CLUSTER)
    representative: str = info(**_ID)
    size: int = info()
    members: list[str] = info()


@dataclass(frozen=True)
class Export:
    """Every record and every cluster (``format=json``)."""

    pictures: list[Picture]
    clusters: list[ClusterMembers]


@dataclass(frozen=True)
class GraphNode:
    """A picture in the graph export."""

    id: str = info(**_ID)
    name: str = info()
    cluster: int = info(**_CLUSTER)
    representative: bool = info(description="true for its cluster's representative")
    tags: list[str] = info()


@dataclass(frozen=True)
class GraphEdge:
    """Two pictures the candidate index pairs and the algorithms do not reject."""

    source: str = info(**_ID)
    target: str = info(**_ID)
    distance: float = info(**_DISTANCE)
    decision: Decision = info()
    algorithms: dict[str, AlgorithmVote] = info()
    reason: Reason | None = optional(**_REASON)


@dataclass(frozen=True)
class Graph:
    """The store as a graph (``format=graph``): components are those of the accepted edges."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    clusters: list[ClusterMembers]
    components: list[list[str]]


@dataclass(frozen=True)
class GraphPage:
    """Whole clusters, largest first from cluster rank ``offset``, up to ``limit`` pictures; edges
    between drawn pictures only."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    pictures: int = info(description="pictures stored in all")
    clusters: int = info(description="clusters in all")
    offset: int = info(minimum=0, description="rank of the first cluster drawn (0 = the largest)")
    shown_clusters: int = info(description="clusters drawn on this page")
    cut: list[int] = info(description="clusters drawn with only their first ``limit`` members")
    next: int | None = info(description="``offset`` of the next page; null on the last one")

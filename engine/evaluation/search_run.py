"""The merged decision measured through quaid's real search path.

References are added to a :class:`engine.core.Quaid` on its own embedded
Redis in a temporary folder (the same code MISP, AIL and the CLI use:
picture loading, candidate index prefilter, shortlist, every enabled
algorithm, decision merging); then every variant and negative is searched.
Each query's top answer is kept, so the contact sheet can show what was
accepted or missed (:mod:`engine.evaluation.contact`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engine.config import Settings
from engine.core import Quaid
from engine.decision import Decision
from engine.evaluation.manifest import Entry
from engine.evaluation.metrics import Flags


@dataclass(frozen=True)
class SearchRun:
    flags: Flags
    add_ms: float  # mean per reference
    search_ms: np.ndarray  # per query
    top: np.ndarray  # per query, the reference index of the top match, -1 when there is none
    top_distance: np.ndarray  # per query, the top match's merged distance (inf when none)


def run_search(folder: Path, references: list[Entry], queries: list[Entry], truth: np.ndarray,
               settings: Settings, progress: bool = True) -> SearchRun:
    """Add the references, search every query, and return the per-query flags and timings."""
    n = len(queries)
    flags = {k: np.zeros(n, dtype=bool) for k in ("accepted_right", "found", "wrong_accept", "accepted",
                                                   "to_review", "wrong_in_accepted")}
    search_ms = np.zeros(n)
    top, top_distance = np.full(n, -1), np.full(n, np.inf)
    with tempfile.TemporaryDirectory(prefix="quaid-eval-") as home:
        settings = replace(settings, home=Path(home), redis_url=None, keep="none")
        with Quaid.open(settings) as quaid:
            position: dict[str, int] = {}
            start = time.perf_counter()
            for index, ref in enumerate(_bar(references, progress, "index references")):
                position[quaid.add((folder / ref.path).read_bytes(), name=ref.id).id] = index
            add_ms = 1000 * (time.perf_counter() - start) / max(1, len(references))
            for i, query in enumerate(_bar(queries, progress, "search (merged)")):
                data = (folder / query.path).read_bytes()
                start = time.perf_counter()
                result = quaid.search(data, top=max(1, settings.shortlist), include_rejected=True)
                search_ms[i] = 1000 * (time.perf_counter() - start)
                _score(result, position, int(truth[i]), flags, i)
                if result.matches:
                    top[i] = position.get(result.matches[0].id, -1)
                    top_distance[i] = result.matches[0].distance
    return SearchRun(Flags(**flags), add_ms, search_ms, top, top_distance)


def _score(result, position: dict[str, int], true: int, flags: dict, i: int) -> None:
    top_right = bool(result.matches) and position.get(result.matches[0].id) == true and true >= 0
    accepted = result.decision is Decision.ACCEPTED
    flags["accepted"][i] = accepted
    flags["accepted_right"][i] = accepted and top_right
    flags["wrong_accept"][i] = accepted and not top_right
    flags["to_review"][i] = result.decision is Decision.TO_REVIEW
    flags["wrong_in_accepted"][i] = any(m.decision is Decision.ACCEPTED and position.get(m.id) != true
                                        for m in result.matches)
    flags["found"][i] = true >= 0 and any(
        position.get(m.id) == true and m.decision in (Decision.ACCEPTED, Decision.TO_REVIEW)
        for m in result.matches)


def _bar(items, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, disable=not enabled, leave=False)

"""The merged decision measured through quaid's real search path.

References are added to a :class:`engine.core.Quaid` on its own embedded
Redis in a temporary folder (the same code MISP, AIL and the CLI use:
picture loading, candidate index prefilter, shortlist, every enabled
algorithm, decision merging); then every variant and negative is searched.
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


def run_search(folder: Path, references: list[Entry], queries: list[Entry], truth: np.ndarray,
               settings: Settings, progress: bool = True) -> SearchRun:
    """Add the references, search every query, and return the per-query flags and timings."""
    n = len(queries)
    flags = {k: np.zeros(n, dtype=bool) for k in ("accepted_right", "found", "wrong_accept", "accepted",
                                                   "to_review")}
    search_ms = np.zeros(n)
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
                result = quaid.search(data, top=max(1, settings.shortlist))
                search_ms[i] = 1000 * (time.perf_counter() - start)
                _score(result, position, int(truth[i]), flags, i)
    return SearchRun(Flags(**flags), add_ms, search_ms)


def _score(result, position: dict[str, int], true: int, flags: dict, i: int) -> None:
    top_right = bool(result.matches) and position.get(result.matches[0].id) == true and true >= 0
    accepted = result.decision is Decision.ACCEPTED
    flags["accepted"][i] = accepted
    flags["accepted_right"][i] = accepted and top_right
    flags["wrong_accept"][i] = accepted and not top_right
    flags["to_review"][i] = result.decision is Decision.TO_REVIEW
    flags["found"][i] = true >= 0 and any(
        position.get(m.id) == true and m.decision in (Decision.ACCEPTED, Decision.TO_REVIEW)
        for m in result.matches)


def _bar(items, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, disable=not enabled, leave=False)

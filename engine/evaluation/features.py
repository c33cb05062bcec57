"""Features of every picture of a dataset, and brute-force distances for each algorithm alone.

Why brute force: per-algorithm figures must not depend on the candidate
index, so every query is compared with every reference (fine at a few
hundred references). Hamming-type algorithms are compared in one vectorised
popcount (checked against the algorithm's own ``distance`` on sample pairs
first, so a non-Hamming second stage is never skipped silently). Costly
verifiers (ORB: milliseconds a pair) are compared on a shortlist only: the
true reference plus the :data:`SHORTLIST` nearest references by the mean of
the cheap algorithms' distances; other cells stay NaN (= not a candidate).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import algorithms as registry
from engine.algorithms.base import COSTLY, Algorithm
from engine.config import Settings
from engine.evaluation.manifest import Entry
from engine.matching import resolve_thresholds, strongest
from engine.picture import load_picture

SHORTLIST = 5  # nearest references (besides the true one) a costly verifier sees per query
_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1).astype(np.uint16)


#: the reasons a verifier may give (:attr:`engine.algorithms.base.Comparison.reason`), coded by position
REASONS = ("", "same-template")


@dataclass
class DistanceTable:
    """Per algorithm, an (n_queries x n_references) matrix of distances; NaN = not compared."""

    references: list[Entry]
    queries: list[Entry]
    truth: np.ndarray  # per query, the index of its reference, or -1 for negatives
    distances: dict[str, np.ndarray] = field(default_factory=dict)
    #: per costly verifier, the reason it gave per pair, as an index into REASONS (0: none)
    reasons: dict[str, np.ndarray] = field(default_factory=dict)
    extract_seconds: dict[str, float] = field(default_factory=dict)  # summed over all pictures
    decode_seconds: float = 0.0
    pictures: int = 0

    def reason(self, name: str, i: int, j: int) -> str | None:
        """Why ``name`` withheld a YES from query ``i`` and reference ``j`` (None: it did not)."""
        codes = self.reasons.get(name)
        return (REASONS[int(codes[i, j])] or None) if codes is not None else None

    def extract_ms(self) -> dict[str, float]:
        """Mean extraction time per picture and algorithm, decoding excluded (milliseconds)."""
        return {n: 1000 * s / max(1, self.pictures) for n, s in self.extract_seconds.items()}

    def decode_ms(self) -> float:
        """Mean decode + normalisation time per picture (milliseconds)."""
        return 1000 * self.decode_seconds / max(1, self.pictures)


def labelled(entries: list[Entry]) -> tuple[list[Entry], list[Entry], np.ndarray]:
    """References, queries (variants then negatives) and each query's reference index (-1: none)."""
    references = [e for e in entries if e.role == "reference"]
    position = {e.id: i for i, e in enumerate(references)}
    queries = [e for e in entries if e.role == "variant" and e.reference in position]
    queries += [e for e in entries if e.role == "negative"]
    truth = np.array([position.get(q.reference, -1) if q.role == "variant" else -1 for q in queries])
    return references, queries, truth


def all_algorithms() -> list[Algorithm]:
    """One instance of every registered algorithm that votes, enabled by default or not."""
    return [cls() for cls in registry.ALGORITHMS if cls.votes]


def compute_table(folder: Path, entries: list[Entry], settings: Settings,
                  algorithms: list[Algorithm] | None = None, progress: bool = True) -> DistanceTable:
    """Extract every algorithm's features of every picture, then fill the distance matrices."""
    algorithms = algorithms if algorithms is not None else all_algorithms()
    references, queries, truth = labelled(entries)
    table = DistanceTable(references, queries, truth)
    ref_features = _extract(folder, references, algorithms, settings, table, False, progress, "references")
    query_features = _extract(folder, queries, algorithms, settings, table, True, progress, "queries")
    cheap = [a for a in algorithms if a.cost < COSTLY]
    for algorithm in _bar(cheap, progress, "distances"):
        table.distances[algorithm.name] = _matrix(algorithm, query_features[algorithm.name],
                                                  ref_features[algorithm.name])
    costly = [a for a in algorithms if a.cost >= COSTLY]
    if costly:
        order = _shortlists(table, [a.name for a in cheap])
        for algorithm in costly:
            table.distances[algorithm.name], table.reasons[algorithm.name] = _sparse(
                algorithm, query_features[algorithm.name], ref_features[algorithm.name], order, progress,
                resolve_thresholds(settings, algorithm))
    return table


def _extract(folder: Path, items: list[Entry], algorithms: list[Algorithm], settings: Settings,
             table: DistanceTable, query_side: bool, progress: bool, label: str) -> dict[str, list]:
    """Per algorithm, per picture: a list of features (one per orientation on the query side)."""
    out: dict[str, list] = {a.name: [] for a in algorithms}
    for entry in _bar(items, progress, f"features ({label})"):
        start = time.perf_counter()
        picture = load_picture(folder / entry.path, max_pixels=settings.max_pixels,
                               working_side=settings.working_side)
        table.decode_seconds += time.perf_counter() - start
        table.pictures += 1
        for algorithm in algorithms:
            start = time.perf_counter()
            if query_side:
                features = algorithm.query_features(picture, settings.all_orientations)
            else:
                features = [algorithm.extract(picture)]
            spent = time.perf_counter() - start
            table.extract_seconds[algorithm.name] = table.extract_seconds.get(algorithm.name, 0.0) + spent
            out[algorithm.name].append(features)
    return out


def _matrix(algorithm: Algorithm, queries: list[list[bytes]], refs: list[list[bytes]]) -> np.ndarray:
    if _is_plain_hamming(algorithm, queries, refs):
        return _hamming_matrix(algorithm, queries, refs)
    matrix = np.empty((len(queries), len(refs)))
    for i, q in enumerate(queries):
        for j, r in enumerate(refs):
            matrix[i, j] = min(algorithm.distance(f, r[0]) for f in q)
    return np.clip(matrix, 0.0, 1.0)


def _is_plain_hamming(algorithm: Algorithm, queries: list, refs: list) -> bool:
    """True when ``distance`` equals the Hamming share of ``code`` on sample pairs (incl. far ones)."""
    if not algorithm.hamming_bits or not queries or not refs:
        return False
    rng = np.random.default_rng(0)
    for _ in range(60):
        q, r = queries[rng.integers(len(queries))][0], refs[rng.integers(len(refs))][0]
        codes = np.frombuffer(algorithm.code(q), np.uint8) ^ np.frombuffer(algorithm.code(r), np.uint8)
        if abs(algorithm.distance(q, r) - _POPCOUNT[codes].sum() / algorithm.hamming_bits) > 1e-9:
            return False
    return True


def _hamming_matrix(algorithm: Algorithm, queries: list, refs: list) -> np.ndarray:
    ref_codes = np.stack([np.frombuffer(algorithm.code(r[0]), np.uint8) for r in refs])
    matrix = np.full((len(queries), len(refs)), np.inf)
    for i, q in enumerate(queries):
        for feature in q:
            code = np.frombuffer(algorithm.code(feature), np.uint8)
            bits = _POPCOUNT[ref_codes ^ code].sum(axis=1) / algorithm.hamming_bits
            matrix[i] = np.minimum(matrix[i], bits)
    return matrix


def _shortlists(table: DistanceTable, cheap: list[str]) -> list[list[int]]:
    """Per query: its true reference (if any) and the SHORTLIST nearest by mean cheap distance."""
    mean = np.mean([table.distances[n] for n in cheap], axis=0) if cheap else None
    out = []
    for i, true in enumerate(table.truth):
        near = [] if mean is None else list(np.argsort(mean[i], kind="stable")[:SHORTLIST])
        out.append(sorted({int(j) for j in near} | ({int(true)} if true >= 0 else set())))
    return out


def _sparse(algorithm: Algorithm, queries: list, refs: list, order: list[list[int]],
            progress: bool, thresholds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Distances on each query's shortlist (NaN elsewhere), and the verifier's reasons (REASONS codes).

    Of the query's views, the one the search path keeps (:func:`engine.matching.strongest` at the
    settings' ``thresholds``: calibrating other thresholds may prefer another view of a few pairs).
    """
    matrix = np.full((len(queries), len(refs)), np.nan)
    reasons = np.zeros((len(queries), len(refs)), np.uint8)
    for i in _bar(range(len(queries)), progress, f"distances ({algorithm.name}, shortlist)"):
        for j in order[i]:
            closest = strongest((algorithm.compare(f, refs[j][0]) for f in queries[i]), *thresholds)
            matrix[i, j] = min(1.0, max(0.0, closest.distance))
            reasons[i, j] = REASONS.index(closest.reason or "")
    return matrix, reasons


def _bar(items, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, disable=not enabled, leave=False)


def cached_table(folder: Path, entries: list[Entry], settings: Settings, progress: bool = True,
                 algorithms: list[Algorithm] | None = None) -> DistanceTable:
    """:func:`compute_table`, kept in ``folder/.quaid-cache`` as ``.npz`` + JSON (no pickle).

    ``quaid evaluate`` and ``quaid calibrate`` on the same set then extract
    features once. The key covers the algorithm names, the settings that
    change features and the code that computes them (:func:`code_version`);
    the JSON lists each picture's id, path and size, so a cached table also
    serves a manifest that kept a subset of its pictures
    (after :func:`engine.evaluation.dataset.prune_ambiguous`).
    """
    algorithms = algorithms if algorithms is not None else all_algorithms()
    key = hashlib.sha256(json.dumps({
        "algorithms": [a.name for a in algorithms], "working_side": settings.working_side,
        "orientations": settings.all_orientations, "shortlist": SHORTLIST, "code": code_version(),
        "reasons": REASONS,
        "views": {a.name: resolve_thresholds(settings, a) for a in algorithms if a.cost >= COSTLY}},
        sort_keys=True).encode())
    base = Path(folder) / ".quaid-cache" / f"table-{key.hexdigest()[:16]}"
    references, queries, truth = labelled(entries)
    cached = _load_cached(base, folder, references, queries, truth)
    if cached is not None:
        return cached
    table = compute_table(folder, entries, settings, algorithms, progress)
    base.parent.mkdir(exist_ok=True)
    np.savez_compressed(base.with_suffix(".npz"), **table.distances,
                        **{REASON_PREFIX + name: codes for name, codes in table.reasons.items()})
    base.with_suffix(".json").write_text(json.dumps({
        "extract_seconds": table.extract_seconds, "decode_seconds": table.decode_seconds,
        "pictures": table.pictures, "references": [_fingerprint(folder, e) for e in references],
        "queries": [_fingerprint(folder, e) for e in queries]}))
    return table


REASON_PREFIX = "reason:"  # a verifier's reason codes in the cached .npz, beside its distances


def code_version() -> str:
    """Digest of the code that makes features and distances (picture loading, every algorithm, the
    frame finder ORB's query views use).

    Part of the cache key: a table computed by other code must never be reused
    silently (calibrating on stale distances would ship wrong thresholds).
    """
    digest = hashlib.sha256()
    engine_dir = Path(__file__).resolve().parent.parent
    code = [engine_dir / "picture.py", *(engine_dir / "algorithms").glob("*.py"),
            *(engine_dir / "candidates").glob("*.py")]
    for path in sorted(code):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _fingerprint(folder: Path, entry: Entry) -> str:
    return f"{entry.id}|{entry.path}|{(Path(folder) / entry.path).stat().st_size}"


def _load_cached(base: Path, folder: Path, references: list[Entry], queries: list[Entry],
                 truth: np.ndarray) -> DistanceTable | None:
    if not (base.with_suffix(".npz").exists() and base.with_suffix(".json").exists()):
        return None
    meta = json.loads(base.with_suffix(".json").read_text())
    ref_pos = {f: i for i, f in enumerate(meta.get("references", []))}
    query_pos = {f: i for i, f in enumerate(meta.get("queries", []))}
    try:
        rows = [query_pos[_fingerprint(folder, e)] for e in queries]
        cols = [ref_pos[_fingerprint(folder, e)] for e in references]
    except KeyError:
        return None
    with np.load(base.with_suffix(".npz"), allow_pickle=False) as data:
        kept = {name: data[name][np.ix_(rows, cols)] for name in data.files}
    distances = {name: m for name, m in kept.items() if not name.startswith(REASON_PREFIX)}
    reasons = {name[len(REASON_PREFIX):]: m for name, m in kept.items() if name.startswith(REASON_PREFIX)}
    return DistanceTable(references, queries, truth, distances, reasons, meta["extract_seconds"],
                         meta["decode_seconds"], meta["pictures"])

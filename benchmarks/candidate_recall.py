"""Shortlist recall per modification kind: is the right stored picture among the candidates verified?

Why: only pictures the candidate index shortlists can be found (engine/index.py); a
shortlist is a recall problem. This script stores a dataset's references (and its negatives
and distractors, plus ``--extra`` folders of pictures as more distractors), then, for every
variant, asks :class:`engine.index.CandidateIndex` for the shortlist of ``--k`` candidates
(the search's ``settings.shortlist``) and counts how often the variant's reference is in it,
per modification kind, for each candidate generator:

* before: the global codes (pHash, dHash, PDQ of the whole picture), code names merged by
  smallest bit fraction (the index's former ranking);
* the global codes merged by rank (:meth:`engine.index.CandidateIndex.shortlist`);
* after: global and region codes (:mod:`engine.candidates.regions`: bands, mirrored bands,
  bands of the page inside a frame), merged by rank: the shipped search path.

Dataset: a folder with ``manifest.jsonl`` (``quaid dataset build``), or, while one is being
built, ``references/NAME.png`` and ``variants/NAME--KIND.png`` (KIND's trailing ``-N`` dropped).

Run (from the repository root):
``PYTHONPATH=. nice .venv/bin/python benchmarks/candidate_recall.py DATASET --extra DISTRACTORS
--limit 1500 --mirror`` (~2 min of CPU per 1000 queries on one core).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from engine.algorithms.region_codes import RegionCodes
from engine.config import AlgorithmSettings, Settings
from engine.index import CandidateIndex
from engine.matching import Matcher
from engine.picture import load_picture

PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def load_dataset(folder: Path) -> tuple[list[dict], list[dict]]:
    """(stored entries, variant entries); each entry has id, path, and variants a kind and reference."""
    manifest = folder / "manifest.jsonl"
    if manifest.exists():
        entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        stored = [e for e in entries if e["role"] in ("reference", "negative", "distractor")]
        return stored, [e for e in entries if e["role"] == "variant"]
    stored = [{"id": p.stem, "path": str(p.relative_to(folder))}
              for sub in ("references", "negatives", "distractors") for p in _pictures(folder / sub)]
    known = {e["id"] for e in stored}
    variants = []
    for path in _pictures(folder / "variants"):
        reference, _, kind = path.stem.partition("--")
        if reference in known:
            variants.append({"id": path.stem, "path": str(path.relative_to(folder)), "reference": reference,
                             "kind": re.sub(r"-\d+$", "", kind)})
    return stored, variants


def _pictures(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in PICTURE_SUFFIXES)


def extra_pictures(folders: list[Path], limit: int) -> list[dict]:
    found = [{"id": f"extra:{p}", "path": str(p)} for folder in folders for p in _pictures(folder)]
    return found[:limit] if limit else found


Codes = dict[str, list[bytes]]
FLIP = Image.Transpose.FLIP_LEFT_RIGHT
GLOBAL_ONLY = Settings(algorithms={"regions": AlgorithmSettings(enabled=False)})


def global_only(codes: Mapping[str, object]) -> dict:
    """The codes of the global hashes alone (the region generator's tables left out)."""
    return {n: c for n, c in codes.items() if not n.startswith(RegionCodes.name)}


def by_distance(index: CandidateIndex, codes: Codes, k: int) -> set[str]:
    """The shortlist as the index merged code names before rank fusion: smallest bit fraction first."""
    best: dict[int, float] = {}
    for name, probes in codes.items():
        table = index._tables.get(name)
        if table is None or not probes:
            continue
        slots, distances = table.nearest(probes, k)
        for slot, dist in zip(slots.tolist(), distances.tolist(), strict=True):
            best[slot] = min(dist / (8 * table.nbytes), best.get(slot, 1.0))
    chosen = sorted(best, key=lambda slot: (best[slot], index._ids.name(slot)))[:k]
    return set(index._ids.names(chosen))


def fused(index: CandidateIndex, codes: Codes, k: int) -> set[str]:
    """The shortlist as shipped (:meth:`CandidateIndex.shortlist`: code names merged by rank)."""
    return {c.id for c in index.shortlist(codes, k)}


def report(title: str, kinds: list[str], hits: np.ndarray) -> None:
    print(f"\n## {title}")
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for kind, hit in zip(kinds, hits.tolist(), strict=True):
        by_kind[kind].append(hit)
    for kind in sorted(by_kind):
        print(f"{kind:<22}{len(by_kind[kind]):>6}{100 * np.mean(by_kind[kind]):>8.1f}%")
    print(f"{'ALL':<22}{len(hits):>6}{100 * np.mean(hits):>8.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--extra", type=Path, action="append", default=[],
                        help="a folder of more pictures to store as distractors (repeatable)")
    parser.add_argument("--extra-limit", type=int, default=0, help="at most this many extra pictures")
    parser.add_argument("--k", type=int, default=Settings().shortlist,
                        help="shortlist size (default: shipped)")
    parser.add_argument("--kinds", help="comma-separated kinds to query (default: all)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many queries (every n-th)")
    parser.add_argument("--mirror", action="store_true",
                        help="also query each recompressed copy mirrored (kind 'mirror (synthetic)')")
    parser.add_argument("--multihash", action="store_true",
                        help="also the shipped path through the multi-index hash (engine/multihash.py, "
                             "used past settings.index_multihash_from codes): what its radius loses")
    args = parser.parse_args()
    stored_entries, variants = load_dataset(args.dataset)
    if args.kinds:
        variants = [v for v in variants if v["kind"] in set(args.kinds.split(","))]
    if args.limit and len(variants) > args.limit:
        variants = variants[:: len(variants) // args.limit][: args.limit]
    extras = extra_pictures(args.extra, args.extra_limit)
    matcher = Matcher(Settings())
    generators = [a for a in matcher.algorithms if a.prefilter]
    region_codes = matcher.algorithm(RegionCodes.name)
    index = CandidateIndex(multihash_from=None)
    hashed = CandidateIndex(multihash_from=0)
    stored_ms = []
    for entry in stored_entries + extras:
        path = Path(entry["path"]) if entry["id"].startswith("extra:") else args.dataset / entry["path"]
        picture = load_picture(path.read_bytes())
        start = time.process_time()
        features = {a.name: a.extract(picture) for a in generators}
        stored_ms.append((time.process_time() - start) * 1000)
        index.upsert(entry["id"], matcher.prefilter_codes(features))
        if args.multihash:
            hashed.upsert(entry["id"], matcher.prefilter_codes(features))
    queries: list[Codes] = []
    probe_ms: list[float] = []
    kinds, truth = [], []
    for entry in variants:
        picture = load_picture((args.dataset / entry["path"]).read_bytes())
        shown = [(entry["kind"], picture)]
        if args.mirror and entry["kind"] == "recompress":
            shown.append(("mirror (synthetic)", picture.transformed(FLIP)))
        for kind, query in shown:
            start = time.process_time()
            region_codes.probes(query)
            probe_ms.append((time.process_time() - start) * 1000)
            queries.append(matcher.query_codes(matcher.query(query)))
            kinds.append(kind)
            truth.append(entry["reference"])
    print(f"# shortlist recall at k={args.k}: {len(stored_entries)} stored + {len(extras)} distractors, "
          f"{len(queries)} queries")
    print(f"# CPU ms per picture (median): stored prefilter features {np.median(stored_ms):.1f}, "
          f"of which region codes measured apart below; query region probes {np.median(probe_ms):.1f}")
    runs = {"before: global codes, merged by distance": (by_distance, global_only),
            "global codes, merged by rank": (fused, global_only),
            "after: global + region codes, merged by rank (shipped)": (fused, dict)}
    if args.multihash:
        runs["global + region codes, merged by rank, through the multi-index hash"] = \
            (lambda _, codes, k: fused(hashed, codes, k), dict)
    for title, (shortlist, keep) in runs.items():
        hits = np.array([right in shortlist(index, keep(codes), args.k)
                         for codes, right in zip(queries, truth, strict=True)])
        report(title, kinds, hits)


if __name__ == "__main__":
    main()

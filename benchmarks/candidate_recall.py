"""Shortlist recall per modification kind: is the right stored picture among the candidates verified?

Why: only pictures the candidate index shortlists can be found (engine/index.py); a
shortlist is a recall problem. This script stores a dataset's references (and its negatives
and distractors, plus ``--extra`` folders of pictures as more distractors), then, for every
variant, asks :class:`engine.index.CandidateIndex` for the shortlist of ``--k`` candidates
(the search's ``settings.shortlist``) and counts how often the variant's reference is in it,
per modification kind, for each candidate generator:

* ``global``: the shipped codes (:meth:`engine.matching.Matcher.prefilter_codes` /
  ``query_codes`` with region codes off): pHash, dHash, PDQ of the whole picture.
* ``+regions``: the same plus region codes (:mod:`engine.candidates.regions`).
* further rows combine the query-side extras (mirror, content box) one by one.

Dataset: a folder with ``manifest.jsonl`` (``quaid dataset build``), or, while one is being
built, ``references/NAME.png`` and ``variants/NAME--KIND.png`` (KIND's trailing ``-N`` dropped).

Run: ``nice .venv/bin/python benchmarks/candidate_recall.py /work/data/eval-full2
--extra /work/data/verify-sib-small`` (~1 min per 1000 pictures on one core).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from engine.candidates import content_box, regions
from engine.config import Settings
from engine.index import CandidateIndex
from engine.matching import Matcher
from engine.picture import Picture, load_picture

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
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in PICTURE_SUFFIXES) if folder.is_dir() else []


def extra_pictures(folders: list[Path], limit: int) -> list[dict]:
    found = [{"id": f"extra:{p}", "path": str(p)} for folder in folders for p in _pictures(folder)]
    return found[:limit] if limit else found


Codes = dict[str, list[bytes]]


class Generators:
    """The codes of one picture under each generator (stored side and query side)."""

    def __init__(self) -> None:
        self.plain = Matcher(Settings())  # the shipped defaults

    def stored(self, picture: Picture) -> dict[str, Codes]:
        cheap = {a.name: a.extract(picture) for a in self.plain._prefilter()}
        plain = {n: [c] for n, c in self.plain.prefilter_codes(cheap).items()}
        bands = regions.stored_codes(regions.page_grey(picture))
        extra = {f"region{i}": [c] for i, c in enumerate(bands) if c is not None}
        return {"global": plain, "regions": plain | extra}

    def query(self, picture: Picture) -> tuple[dict[str, dict[str, Codes]], dict[str, float]]:
        out, ms = {}, {}
        start = time.process_time()
        plain = self.plain.query_codes(self.plain.query(picture))
        ms["global"] = (time.process_time() - start) * 1000
        start = time.process_time()
        grey = regions.page_grey(picture)
        out["regions"] = _region_probes([grey])
        ms["regions"] = (time.process_time() - start) * 1000
        start = time.process_time()
        box = content_box.page_box(picture.grey)
        boxes = [] if box is None else [regions.page_grey(box)]
        out["box"] = _region_probes(boxes)
        ms["box"] = (time.process_time() - start) * 1000
        start = time.process_time()
        flipped = grey[:, ::-1]
        out["mirror"] = _region_probes([flipped]) | {n: [a.code(a.extract(picture.transformed(FLIP)))]
                                                     for n, a in ((a.name, a) for a in self.plain._prefilter())}
        ms["mirror"] = (time.process_time() - start) * 1000
        out["global"] = plain
        out["mirror_regions"] = _region_probes([flipped])
        return out, ms


FLIP = Image.Transpose.FLIP_LEFT_RIGHT


def _region_probes(greys: list[np.ndarray]) -> Codes:
    probes = [c for grey in greys for c in regions.probe_codes(grey)]
    return {f"region{i}": probes for i in range(len(regions.OFFSETS))} if probes else {}


def combined(parts: list[dict[str, Codes]]) -> Codes:
    out: Codes = defaultdict(list)
    for part in parts:
        for name, codes in part.items():
            out[name].extend(codes)
    return out


def fused(index: CandidateIndex, codes: Codes, k: int) -> set[str]:
    """Experimental: rank by the best rank over code names (ties by distance)."""
    best: dict[int, tuple[int, float]] = {}
    for name, probes in codes.items():
        table = index._tables.get(name)
        if table is None or not probes:
            continue
        slots, distances = table.nearest(probes, k)
        for rank, (slot, dist) in enumerate(zip(slots.tolist(), distances.tolist(), strict=True)):
            key = (rank, dist / (table.nbytes * 8))
            if slot not in best or key < best[slot]:
                best[slot] = key
    chosen = sorted(best, key=lambda s: best[s])[:k]
    return set(index._ids.names(chosen))


def shortlist_hits(index: CandidateIndex, queries: list[Codes], truth: list[str], k: int,
                   fuse: bool = False) -> np.ndarray:
    hits = []
    for codes, right in zip(queries, truth, strict=True):
        found = fused(index, codes, k) if fuse else {c.id for c in index.shortlist(codes, k)}
        hits.append(right in found)
    return np.array(hits)


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
    parser.add_argument("--k", type=int, default=Settings().shortlist, help="shortlist size (default: shipped)")
    parser.add_argument("--kinds", help="comma-separated kinds to query (default: all)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many queries (every n-th)")
    args = parser.parse_args()
    stored_entries, variants = load_dataset(args.dataset)
    if args.kinds:
        variants = [v for v in variants if v["kind"] in set(args.kinds.split(","))]
    if args.limit and len(variants) > args.limit:
        variants = variants[:: len(variants) // args.limit][: args.limit]
    extras = extra_pictures(args.extra, args.extra_limit)
    generators = Generators()
    indexes = {"global": CandidateIndex(), "regions": CandidateIndex()}
    start = time.perf_counter()
    for entry in stored_entries + extras:
        path = Path(entry["path"]) if entry["id"].startswith("extra:") else args.dataset / entry["path"]
        codes = generators.stored(load_picture(path.read_bytes()))
        for name, index in indexes.items():
            index.upsert(entry["id"], {n: c[0] for n, c in codes[name].items()})
    print(f"stored {len(stored_entries)} + {len(extras)} extra in {time.perf_counter() - start:.0f} s; "
          f"{len(variants)} queries, shortlist k={args.k}", file=sys.stderr)
    queries: list[dict[str, Codes]] = []
    ms: dict[str, list[float]] = defaultdict(list)
    kinds, truth = [], []
    for entry in variants:
        picture = load_picture((args.dataset / entry["path"]).read_bytes())
        for kind, shown in ((entry["kind"], picture), ("mirror (synthetic)", None)):
            if shown is None:
                if entry["kind"] != "recompress":  # one mirrored copy per reference
                    continue
                shown = picture.transformed(FLIP)
            codes, spent = generators.query(shown)
            queries.append(codes)
            kinds.append(kind)
            truth.append(entry["reference"])
            for name, value in spent.items():
                ms[name].append(value)
    print(f"# shortlist recall at k={args.k}: {len(stored_entries)} + {len(extras)} stored, {len(queries)} queries")
    print("# query-side CPU ms (median): " + ", ".join(f"{n} {np.median(v):.1f}" for n, v in ms.items()))
    rows = {"global codes (shipped)": ("global", ["global"]),
            "+ regions": ("regions", ["global", "regions"]),
            "+ regions + box": ("regions", ["global", "regions", "box"]),
            "+ regions + box + mirror": ("regions", ["global", "regions", "box", "mirror"]),
            "+ regions + box + mirror(regions only)": ("regions", ["global", "regions", "box", "mirror_regions"])}
    for title, (index, parts) in rows.items():
        codes = [combined([q[p] for p in parts]) for q in queries]
        report(title, kinds, shortlist_hits(indexes[index], codes, truth, args.k))
        report(title + " [rank fusion]", kinds, shortlist_hits(indexes[index], codes, truth, args.k, True))


if __name__ == "__main__":
    main()

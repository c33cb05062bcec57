"""Shortlist recall of the candidate index for framed, scrolled and re-sized screenshots.

Why: only pictures the prefilter shortlists can be found (engine/index.py). On eval-full
the true reference of many ``sandbox-frame`` / ``scroll`` / ``window-size`` copies is not
among the 50 nearest by the global codes (pHash 64, dHash 64, PDQ 256). This script
measures, per modification kind, how often the true reference is within the top 50 and
top 20 of the shortlist for the current codes and for candidate extra codes:

* ``box``: query-side content box (:mod:`benchmarks.prefilter_prototypes.content_box`): the page found
  inside a window / desktop / browser frame by long straight edges; the crop's codes are
  added as extra query codes of the same names (stored codes unchanged).
* ``topleft``: an extra stored code, PDQ of a fixed top-left window at the original pixel
  scale (robust to another window width when the layout is left-anchored).
* ``bands``: an extra stored code, a band hash of the reference's lower band; the query
  offers its bands at several offsets (robust to a vertical scroll).

The shortlist is computed as :meth:`engine.index.CandidateIndex.shortlist` ranks it: per
stored picture the smallest bit-fraction distance over code names (and over a name's query
codes), nearest first, ties by id; the union of per-name top-k capped at k is the same set.
``--distractors`` also stores the unseen pages of the same sites (negatives), which shows
whether a code floods the shortlist with look-alike pages of one site.

Run: ``.venv/bin/python benchmarks/prefilter_recall.py [--dataset datasets/eval-full]
[--distractors] [--kinds sandbox-frame,scroll]``. One process, ~3 minutes on eval-full.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.prefilter_prototypes import bands, content_box
from engine.algorithms.dhash import DHash
from engine.algorithms.pdq import PDQ
from engine.algorithms.phash import PHash
from engine.picture import Picture, load_picture

BASE = (PHash(), DHash(), PDQ())
TOPS = (50, 20)


def base_codes(picture: Picture) -> dict[str, list[bytes]]:
    return {a.name: [a.code(a.extract(picture))] for a in BASE}


def box_codes(picture: Picture, modes: tuple[bool, ...] = (True, False), algorithms=BASE) -> dict:
    """The codes of each content-box crop (none when no frame is found)."""
    out: dict[str, list[bytes]] = defaultdict(list)
    for crop in content_box.crops(picture, modes):
        for a in algorithms:
            out[a.name].append(a.code(a.extract(crop)))
    return out


def outer_box_codes(picture: Picture) -> dict[str, list[bytes]]:
    return box_codes(picture, (False,))


def outer_box_fast(picture: Picture) -> dict[str, list[bytes]]:
    """The outer box only, pHash and dHash only (PDQ costs ~6 ms on a crop)."""
    return box_codes(picture, (False,), BASE[:2])


def band64_query(picture: Picture) -> dict[str, list[bytes]]:
    return {"band": bands.query_band_codes(picture, step=64)}


def topleft_code(picture: Picture) -> dict[str, list[bytes]]:
    code = bands.top_left_code(picture)
    return {"topleft": [code] if code else []}


def band_store(picture: Picture) -> dict[str, list[bytes]]:
    code = bands.stored_band_code(picture)
    return {"band": [code] if code else []}


def band_query(picture: Picture) -> dict[str, list[bytes]]:
    return {"band": bands.query_band_codes(picture)}


#: idea name -> (query-side extra codes, stored-side extra codes or None)
IDEAS: dict[str, tuple[Callable, Callable | None]] = {
    "box": (box_codes, None),
    "outerbox": (outer_box_codes, None),
    "outerbox-fast": (outer_box_fast, None),
    "topleft": (topleft_code, topleft_code),
    "bands": (band_query, band_store),
    "bands-step64": (band64_query, band_store),
}


def load(dataset: Path, distractors: bool, kinds: set[str] | None) -> tuple[list[dict], list[dict]]:
    entries = [json.loads(line) for line in (dataset / "manifest.jsonl").read_text().splitlines() if line]
    stored = [e for e in entries if e["role"] == "reference"]
    if distractors:
        stored += [e for e in entries if e["role"] == "negative"]
    queries = [e for e in entries if e["role"] == "variant" and (kinds is None or e["kind"] in kinds)]
    return stored, queries


def features(entries: list[dict], dataset: Path, query: bool) -> tuple[list[dict], dict[str, list[float]]]:
    """Per entry: {idea or 'base': codes}; and per idea the ms spent on it per picture."""
    rows, ms = [], defaultdict(list)
    for entry in entries:
        picture = load_picture((dataset / entry["path"]).read_bytes())
        start = time.perf_counter()
        row = {"base": base_codes(picture)}
        ms["base"].append((time.perf_counter() - start) * 1000)
        for name, (on_query, on_store) in IDEAS.items():
            make = on_query if query else on_store
            if make is None:
                continue
            start = time.perf_counter()
            row[name] = make(picture)
            ms[name].append((time.perf_counter() - start) * 1000)
        rows.append(row)
    return rows, ms


def distance_matrix(queries: list[dict[str, list[bytes]]], stored: list[dict[str, list[bytes]]]
                    ) -> np.ndarray:
    """(queries, stored) smallest bit fraction over every shared code name and query code; 1 if none."""
    out = np.ones((len(queries), len(stored)))
    names = {n for s in stored for n in s}
    for name in names:
        have = [j for j, s in enumerate(stored) if s.get(name)]
        if not have:
            continue
        table = np.unpackbits(np.array([np.frombuffer(stored[j][name][0], np.uint8) for j in have]), axis=1)
        bits = table.shape[1]
        for i, q in enumerate(queries):
            codes = q.get(name) or []
            if not codes:
                continue
            qbits = np.unpackbits(np.array([np.frombuffer(c, np.uint8) for c in codes]), axis=1)
            d = (qbits[:, None, :] != table[None, :, :]).sum(axis=2).min(axis=0) / bits
            out[i, have] = np.minimum(out[i, have], d)
    return out


def merged(rows: list[dict], ideas: tuple[str, ...]) -> list[dict[str, list[bytes]]]:
    out = []
    for row in rows:
        codes: dict[str, list[bytes]] = defaultdict(list)
        for part in ("base", *ideas):
            for name, values in row.get(part, {}).items():
                codes[name].extend(values)
        out.append(codes)
    return out


def ranks(distances: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """0-based rank of the true reference in each query's shortlist order (ties by stored order = id)."""
    order = np.argsort(distances, axis=1, kind="stable")
    return np.argmax(order == truth[:, None], axis=1)


def report(title: str, kinds: list[str], rank: np.ndarray, ms: float) -> None:
    print(f"\n## {title}   (+{ms:.2f} ms per query)")
    print(f"{'kind':<15}{'n':>5}" + "".join(f"{'top' + str(k):>8}" for k in TOPS) + f"{'median rank':>13}")
    by_kind: dict[str, list[int]] = defaultdict(list)
    for kind, r in zip(kinds, rank.tolist(), strict=True):
        by_kind[kind].append(r)
    by_kind["ALL"] = rank.tolist()
    for kind in sorted(by_kind, key=lambda k: (k == "ALL", k)):
        r = np.array(by_kind[kind])
        print(f"{kind:<15}{len(r):>5}" + "".join(f"{100 * np.mean(r < k):>7.1f}%" for k in TOPS)
              + f"{np.median(r) + 1:>13.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=Path("datasets/eval-full"))
    parser.add_argument("--distractors", action="store_true", help="store the negatives too")
    parser.add_argument("--kinds", help="comma-separated variant kinds (default: all)")
    args = parser.parse_args()
    kinds = set(args.kinds.split(",")) if args.kinds else None
    stored_entries, query_entries = load(args.dataset, args.distractors, kinds)
    stored, _ = features(stored_entries, args.dataset, query=False)
    queries, ms = features(query_entries, args.dataset, query=True)
    position = {e["id"]: j for j, e in enumerate(stored_entries)}
    truth = np.array([position[e["reference"]] for e in query_entries])
    print(f"{len(stored_entries)} stored, {len(query_entries)} queries; base codes "
          f"{np.mean(ms['base']):.2f} ms per query")
    variants = {"current codes": ()} | {f"+ {n}": (n,) for n in IDEAS}
    variants["+ outerbox-fast + bands-step64"] = ("outerbox-fast", "bands-step64")
    variants["+ outerbox + bands + topleft"] = ("outerbox", "bands", "topleft")
    for title, ideas in variants.items():
        distances = distance_matrix(merged(queries, ideas), merged(stored, ideas))
        extra = sum(float(np.mean(ms[n])) for n in ideas)
        report(title, [e["kind"] for e in query_entries], ranks(distances, truth), extra)


if __name__ == "__main__":
    main()

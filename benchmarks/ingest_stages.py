"""Where a bulk add's CPU goes, stage by stage: the workers' preparation and the owner's add.

Two measurements on real screenshots, in this process, with ``time.process_time`` around each
stage (no profiler, whose overhead would distort the small stages):

* **preparation** (what :func:`engine.prepared.prepare` does in a worker), per picture: decoding,
  each enabled algorithm's feature (the first to need the grey picture pays its conversion),
  the query's index codes, the kept thumbnail;
* **the owner's add** (:meth:`engine.core.Quaid.add_prepared` after ``--stored`` pictures were
  stored by the bulk ingest), per picture: the index shortlist, the fetches, the ORB rank of
  the shortlist, the ORB verification, the cheap scores and the rest of the comparison, the
  write. The disk-tier part is written before the timing, as the bulk ingest does per batch.

Usage: ``python -m benchmarks.ingest_stages --folders DIR... [--count 300] [--stored 1000]``
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_ingest import _stop_store, screenshots


class Clock:
    """CPU seconds per label, from wrapped methods."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def timed(self, label: str, call: Callable, *args, **kwargs) -> object:
        started = time.process_time()
        try:
            return call(*args, **kwargs)
        finally:
            self.seconds[label] += time.process_time() - started

    def wrap(self, owner: type, name: str, label: str) -> None:
        real = getattr(owner, name)

        def timed(*args, **kwargs):
            return self.timed(label, real, *args, **kwargs)

        setattr(owner, name, timed)

    def per_picture(self, count: int) -> dict[str, float]:
        return {label: round(1000 * value / count, 1) for label, value in
                sorted(self.seconds.items(), key=lambda item: -item[1])}


def preparation(shots: list[Path]) -> dict[str, float]:
    from engine.config import load_settings
    from engine.matching import Matcher
    from engine.picture import load_picture
    from engine.prepared import kept_image

    settings = load_settings()
    matcher, clock = Matcher(settings), Clock()
    for path in shots:
        data = path.read_bytes()
        picture = clock.timed("decode", load_picture, data, max_pixels=settings.max_pixels,
                              working_side=settings.working_side)
        query = matcher.query(picture)
        for algorithm in matcher.algorithms:
            clock.timed(f"feature {algorithm.name}", query.features, algorithm.name)
        clock.timed("query codes", matcher.query_codes, query)
        clock.timed("kept thumbnail", kept_image, settings, data, picture)
    figures = clock.per_picture(len(shots))
    figures["total"] = round(sum(figures.values()), 1)
    return figures


def owner(shots: list[Path], stored: list[Path], work: Path) -> dict[str, float]:
    from engine.algorithms.orb import Orb
    from engine.config import load_settings
    from engine.core import Quaid
    from engine.ingest import Item, ingest
    from engine.matching import Matcher
    from engine.prepared import prepare
    from engine.store.mirror import Mirror
    from engine.store.records import RecordStore

    home = work / "home"
    try:
        with Quaid.open(load_settings(home=home, redis_url=None)) as quaid:
            for _ in ingest(quaid, (Item(p.name, p.read_bytes()) for p in stored)):
                pass
            ready = [prepare(quaid.matcher, quaid.settings, p.read_bytes()) for p in shots]
            bulk: dict[str, bytes] = {}
            for prepared in ready:
                features = {name: values[0] for name, values in prepared.query_features.items()}
                bulk.update(quaid.records.split(prepared.id, features, prepared.image)[2])
            quaid.records.tier_put(bulk)
            clock = Clock()
            for owner_type, name, label in [
                    (Orb, "rank", "ORB rank of the shortlist"), (Orb, "compare", "ORB verification"),
                    (Matcher, "compare_shortlist", "comparison, all of it"),
                    (Mirror, "shortlist", "index shortlist"), (Mirror, "sync", "change-stream sync"),
                    (Mirror, "apply", "index update"),
                    (RecordStore, "shortlist_features", "fetch of the shortlist's features"),
                    (RecordStore, "prefetch", "fetch of the ORB features (disk tier)"),
                    (RecordStore, "get_many", "fetch of the answer's records"),
                    (RecordStore, "put_split", "write of the record")]:
                clock.wrap(owner_type, name, label)
            started = time.process_time()
            for path, prepared in zip(shots, ready, strict=True):
                quaid.add_prepared(prepared, path.name, tier_written=True)
            total = time.process_time() - started
    finally:
        _stop_store(home)
    figures = clock.per_picture(len(shots))
    figures["total"] = round(1000 * total / len(shots), 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", nargs="+", required=True, help="folders of PNG screenshots")
    parser.add_argument("--count", type=int, default=300, help="pictures measured")
    parser.add_argument("--stored", type=int, default=1000, help="pictures stored before the owner's adds")
    parser.add_argument("--seed", type=int, default=1, help="shuffles the screenshots (sites mixed)")
    args = parser.parse_args()
    shots = screenshots(args.folders, args.count + args.stored)
    random.Random(args.seed).shuffle(shots)
    measured, stored = shots[:args.count], shots[args.count:]
    figures = {"pictures": args.count, "stored_before": args.stored,
               "preparation_ms_per_picture": preparation(measured)}
    with tempfile.TemporaryDirectory(prefix="quaid-stages-") as work:
        figures["owner_ms_per_picture"] = owner(measured, stored, Path(work))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

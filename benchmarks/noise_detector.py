"""How many uninformative pages the low-information detector flags, and how many real ones.

    .venv/bin/python -m benchmarks.noise_detector --per-kind 25 \\
        --real /work/data/eval-full2/references /work/data/eval-full2/variants \\
               /work/data/eval-full2/distractors /work/data/eval-full2/negatives

Generated noise pages (``tests/noise_pages.py``: blank pages, browser and server error pages,
challenge and captcha pages, parked domains, default server pages rendered by Chromium;
placeholders and spinners drawn with Pillow) are measured per kind; then every PNG under the
``--real`` folders (real screenshots: none should be flagged). Prints the flagged share per
kind, every real picture flagged (with its measures, to look at), the real pictures nearest
the limits, and the detector's time per picture.

``--bank`` then measures the noise bank itself in a fresh store: the first page of each kind is
added and marked as noise, as an analyst would, and every other page is searched; a search
answered ``matches-noise`` counts. The ``--real`` pictures are searched against that store too
(with ``--bank-real``, a few minutes for thousands): none should be answered as noise.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from engine.low_information import MAX_ENTROPY, MAX_INK, MIN_PDQ_QUALITY, is_low_information, measure
from engine.noise import MATCHES_NOISE
from engine.picture import load_picture
from tests.noise_pages import pillow_pages, rendered_pages

NEAREST = 5  # real pictures shown nearest the limits


def noise_figures(per_kind: int, seed: int) -> None:
    flagged, total = Counter(), Counter()
    for kind, data in [*rendered_pages(per_kind, seed), *pillow_pages(per_kind, seed)]:
        total[kind] += 1
        flagged[kind] += is_low_information(measure(load_picture(data)))
    print(f"generated noise pages flagged: {sum(flagged.values())} of {sum(total.values())}")
    for kind in total:
        print(f"  {kind:<16} {flagged[kind]:>3} of {total[kind]}")


def real_figures(folders: list[Path]) -> None:
    files = sorted(p for folder in folders for p in folder.rglob("*.png"))
    rows, seconds, reused = [], 0.0, 0.0
    for path in files:
        picture = load_picture(path)
        _ = picture.grey_thumbnail  # shared with the algorithms: computed before the detector runs
        started = time.perf_counter()
        measures = measure(picture)
        seconds += time.perf_counter() - started
        started = time.perf_counter()
        measure(picture, pdq_quality=measures.pdq_quality)  # as in a search: pdq-screen computed it
        reused += time.perf_counter() - started
        rows.append((path, measures))
    flagged = [(p, m) for p, m in rows if is_low_information(m)]
    print(f"real pictures flagged: {len(flagged)} of {len(rows)}")
    for path, measures in flagged:
        print(f"  {path}  {measures.to_json()}")
    print(f"nearest the limits (ink < {MAX_INK} and entropy < {MAX_ENTROPY}, or PDQ quality < "
          f"{MIN_PDQ_QUALITY}), among those not flagged:")
    kept = [(p, m) for p, m in rows if not is_low_information(m)]
    for label, key in (("ink", lambda r: r[1].ink), ("entropy", lambda r: r[1].entropy),
                       ("PDQ quality", lambda r: r[1].pdq_quality)):
        print(f"  by {label}:")
        for path, measures in sorted(kept, key=key)[:NEAREST]:
            print(f"    {path}  {measures.to_json()}")
    if rows:
        print(f"detector time: {1000 * seconds / len(rows):.2f} ms a picture computing PDQ's quality, "
              f"{1000 * reused / len(rows):.2f} ms with the quality pdq-screen computed (decode not counted)")


def bank_figures(per_kind: int, seed: int, folders: list[Path]) -> None:
    from engine.config import load_settings
    from engine.core import Quaid
    from engine.store import EmbeddedRedis

    pages: dict[str, list[bytes]] = {}
    for kind, data in [*rendered_pages(per_kind, seed), *pillow_pages(per_kind, seed)]:
        pages.setdefault(kind, []).append(data)
    home = Path(tempfile.mkdtemp(prefix="quaid-noise-bank-"))
    try:
        with Quaid.open(load_settings(home=home)) as quaid:
            for examples in pages.values():
                quaid.noise.mark(quaid.add(examples[0]).id)
            print(f"noise bank with one marked page of each kind ({len(pages)} pictures); "
                  "the other pages answered as noise through it (matches-noise) / by either way:")
            for kind, examples in pages.items():
                answers = [quaid.search(data).noise for data in examples[1:]]
                through_bank = sum(a is not None and a.reason == MATCHES_NOISE for a in answers)
                either = sum(a is not None for a in answers)
                print(f"  {kind:<16} {through_bank:>3} / {either:>3} of {len(answers)}")
            files = sorted(p for folder in folders for p in folder.rglob("*.png"))
            answered = [(p, quaid.search(p.read_bytes()).noise) for p in files]
            noise = [(p, n) for p, n in answered if n is not None]
            if files:
                print(f"real pictures answered as noise by that store: {len(noise)} of {len(files)}")
            for path, found in noise:
                print(f"  {path}  {found.to_json()}")
    finally:
        EmbeddedRedis(home / "redis").stop()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-kind", type=int, default=25, help="generated pages of each kind (25)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", nargs="*", type=Path, default=[], metavar="DIR",
                        help="folders of real screenshots (PNG, searched recursively)")
    parser.add_argument("--bank", action="store_true", help="also measure the noise bank (see above)")
    parser.add_argument("--bank-real", action="store_true", help="search the --real pictures in that bank")
    args = parser.parse_args()
    noise_figures(args.per_kind, args.seed)
    if args.real:
        real_figures(args.real)
    if args.bank:
        bank_figures(args.per_kind, args.seed, args.real if args.bank_real else [])


if __name__ == "__main__":
    main()

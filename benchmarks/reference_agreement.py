"""Share of pictures on which ``quaid hash`` equals each reference tool's own output.

Input: the JSON that ``tests/fixtures/conformance/record_references.py`` writes for a set
of pictures (run in an environment holding the references), and the folder holding them.
Prints, per algorithm, how many hashes are equal and, for the others, the median number of
differing bits (hex hashes) or signature values (Goldberg)::

    python benchmarks/reference_agreement.py /tmp/refs.json /work/data/eval-full2/references
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.exchange import hash_record  # noqa: E402

COMPARED = ("ahash", "phash", "dhash", "whash", "pdq", "goldberg")


def difference(ours: object, theirs: object) -> int:
    """Differing bits of two hex hashes, or differing values of two signatures."""
    if isinstance(ours, list):
        return sum(a != b for a, b in zip(ours, theirs, strict=True))
    return (int(str(ours), 16) ^ int(str(theirs), 16)).bit_count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("references", type=Path)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    recorded = json.loads(args.references.read_text())
    equal = dict.fromkeys(COMPARED, 0)
    apart: dict[str, list[int]] = {name: [] for name in COMPARED}
    for name, theirs in recorded["pictures"].items():
        ours = hash_record((args.folder / name).read_bytes(), name)["hashes"]
        for algorithm in COMPARED:
            if ours[algorithm] == theirs[algorithm]:
                equal[algorithm] += 1
            else:
                apart[algorithm].append(difference(ours[algorithm], theirs[algorithm]))
                print(f"differs: {name} {algorithm} by {apart[algorithm][-1]}", file=sys.stderr)
    total = len(recorded["pictures"])
    print(f"{total} pictures; references: {recorded['versions']}")
    for algorithm in COMPARED:
        others = apart[algorithm]
        median = f", others a median {statistics.median(others)} apart" if others else ""
        share = 100 * equal[algorithm] / total
        print(f"{algorithm:<9} {equal[algorithm]}/{total} equal ({share:.1f} %){median}")


if __name__ == "__main__":
    main()

"""Share of pictures on which ``quaid hash`` equals each reference tool's own output.

Input: the folder holding a set of pictures, and the JSON files that
``tests/fixtures/conformance/record_references.py`` and ``record_perception.py`` write for
them (each run in an environment holding its references). Prints, per algorithm recorded,
how many hashes are equal and, for the others, the median number of differing bits (hex and
base64 hashes) or signature values (Goldberg)::

    python benchmarks/reference_agreement.py datasets/eval-full/references refs.json perception.json
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.exchange import hash_record  # noqa: E402

COMPARED = ("ahash", "phash", "dhash", "whash", "pdq", "goldberg", "phash_dct_base64")


def difference(ours: object, theirs: object) -> int:
    """Differing bits of two hex hashes, or differing values of two signatures."""
    if isinstance(ours, list):
        return sum(a != b for a, b in zip(ours, theirs, strict=True))
    if str(ours).endswith("="):  # base64 (perception)
        ours, theirs = (base64.b64decode(str(v)).hex() for v in (ours, theirs))
    return (int(str(ours), 16) ^ int(str(theirs), 16)).bit_count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("references", type=Path, nargs="+")
    args = parser.parse_args()
    recorded: dict = {"versions": {}, "pictures": {}}
    for path in args.references:
        part = json.loads(path.read_text())
        recorded["versions"].update(part["versions"])
        for name, hashes in part["pictures"].items():
            recorded["pictures"].setdefault(name, {}).update(hashes)
    compared = [a for a in COMPARED if any(a in h for h in recorded["pictures"].values())]
    equal = dict.fromkeys(compared, 0)
    apart: dict[str, list[int]] = {name: [] for name in compared}
    for name, theirs in recorded["pictures"].items():
        ours = hash_record((args.folder / name).read_bytes(), name)["hashes"]
        for algorithm in compared:
            if ours[algorithm] == theirs[algorithm]:
                equal[algorithm] += 1
            else:
                apart[algorithm].append(difference(ours[algorithm], theirs[algorithm]))
                print(f"differs: {name} {algorithm} by {apart[algorithm][-1]}", file=sys.stderr)
    total = len(recorded["pictures"])
    print(f"{total} pictures; references: {recorded['versions']}")
    for algorithm in compared:
        others = apart[algorithm]
        median = f", others a median {statistics.median(others)} apart" if others else ""
        share = 100 * equal[algorithm] / total
        print(f"{algorithm:<9} {equal[algorithm]}/{total} equal ({share:.1f} %){median}")


if __name__ == "__main__":
    main()

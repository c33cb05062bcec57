"""Feature drift: do two versions of the algorithms give the same features and distances?

Speed work (shared grey copies, smaller inputs, vectorised code) must not change
what an algorithm means. This tool takes a snapshot of every algorithm's feature
on a fixed picture set, and compares two snapshots by the *distances* they give
on the pairs that matter:

* ``datasets/eval-small``: each variant against its reference (modified copies)
  and each negative against every reference (unseen pages and photos);
* the conformance kit's drawn pictures (``tests/test_algorithms.py``): each
  modification against its source, and each source against the others;
* two 12-megapixel JPEG photos made from installed wallpapers, and a re-scaled,
  re-encoded copy of each.

Snapshots are JSON (hex features), never pickle.

Usage::

    python -m benchmarks.feature_drift snapshot /tmp/before.json
    ... change the code ...
    python -m benchmarks.feature_drift snapshot /tmp/after.json
    python -m benchmarks.feature_drift compare /tmp/before.json /tmp/after.json

``compare`` prints, per algorithm: features byte-identical, largest and mean
absolute distance change over the pairs, and how many pairs changed vote
(YES / MAYBE / NO at the algorithm's default thresholds).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from engine import algorithms
from engine.decision import vote_for
from engine.picture import load_picture

EVAL_SMALL = Path("datasets/eval-small")
SKIP = ("orb",)  # ORB's feature embeds a JPEG thumbnail; its owner checks it with bench_orb


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def big_photos(count: int = 2) -> list[Image.Image]:
    """``count`` 4000x3000 photos from the largest size of different installed wallpapers."""
    folders = sorted(Path("/usr/share/wallpapers").glob("*/contents/images"))
    out = []
    for folder in folders:
        files = sorted(folder.glob("*.jpg"), key=lambda p: p.stat().st_size)
        if files:
            out.append(Image.open(files[-1]).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC))
        if len(out) == count:
            break
    return out


def picture_set() -> tuple[dict[str, bytes], list[tuple[str, str]]]:
    """Encoded pictures by key, and the (a, b) key pairs whose distances are compared."""
    data: dict[str, bytes] = {}
    pairs: list[tuple[str, str]] = []
    manifest = EVAL_SMALL / "manifest.jsonl"
    if manifest.exists():
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        for row in rows:
            data[row["id"]] = (EVAL_SMALL / row["path"]).read_bytes()
        refs = [r["id"] for r in rows if r["role"] == "reference"]
        pairs += [(r["id"], r["reference"]) for r in rows if r["role"] == "variant"]
        pairs += [(r["id"], ref) for r in rows if r["role"] == "negative" for ref in refs]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.test_algorithms import SOURCES  # the conformance kit's drawn pictures

    kit = [(f"kit-{kind}-{i}", image) for kind, images in SOURCES.items() for i, image in enumerate(images)]
    for key, image in kit:
        w, h = image.size
        data[key] = _encode(image, "PNG")
        smaller = image.resize((w * 3 // 5, h * 3 // 5), Image.Resampling.LANCZOS)
        data[key + "-resized"] = _encode(smaller, "PNG")
        data[key + "-jpeg"] = _encode(image, "JPEG", quality=70)
        pairs += [(key + "-resized", key), (key + "-jpeg", key)]
    pairs += [(a, b) for i, (a, _) in enumerate(kit) for b, _ in kit[i + 1:]]
    for i, image in enumerate(big_photos()):
        key = f"photo12mp-{i}"
        data[key] = _encode(image, "JPEG", quality=90)
        smaller = image.resize((1600, 1200), Image.Resampling.LANCZOS)
        data[key + "-copy"] = _encode(smaller, "JPEG", quality=75)
        pairs.append((key + "-copy", key))
    return data, pairs


def snapshot(out: Path) -> None:
    data, pairs = picture_set()
    instances = [cls() for cls in algorithms.ALGORITHMS if cls.name not in SKIP]
    features: dict[str, dict[str, str]] = {a.name: {} for a in instances}
    for key, encoded in data.items():
        picture = load_picture(encoded)
        for algorithm in instances:
            features[algorithm.name][key] = algorithm.extract(picture).hex()
    out.write_text(json.dumps({"pairs": pairs, "features": features}))
    print(f"{len(data)} pictures, {len(pairs)} pairs, {len(instances)} algorithms -> {out}")


def compare(before: Path, after: Path) -> float:
    """Print the drift table; returns the largest absolute distance change of any algorithm."""
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    pairs = [tuple(p) for p in a["pairs"]]
    worst = 0.0
    print(f"{'algorithm':10s} {'identical':>12s} {'max |d|':>9s} {'mean |d|':>9s} {'vote changes':>13s}")
    for name, old in a["features"].items():
        new = b["features"].get(name)
        if new is None:
            continue
        algorithm = algorithms.get(name)()
        same = sum(old[k] == new.get(k) for k in old)
        deltas, votes = [], 0
        for x, y in pairs:
            d0 = algorithm.distance(bytes.fromhex(old[x]), bytes.fromhex(old[y]))
            d1 = algorithm.distance(bytes.fromhex(new[x]), bytes.fromhex(new[y]))
            deltas.append(abs(d1 - d0))
            thresholds = (algorithm.yes_threshold, algorithm.maybe_threshold)
            votes += vote_for(d0, *thresholds) != vote_for(d1, *thresholds)
        worst = max(worst, max(deltas))
        print(f"{name:10s} {same:5d}/{len(old):<6d} {max(deltas):9.4f} {np.mean(deltas):9.5f} "
              f"{votes:6d}/{len(pairs)}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("snapshot").add_argument("out", type=Path)
    cmp = sub.add_parser("compare")
    cmp.add_argument("before", type=Path)
    cmp.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "snapshot":
        snapshot(args.out)
    else:
        print(f"largest distance change: {compare(args.before, args.after):.4f}")


if __name__ == "__main__":
    main()

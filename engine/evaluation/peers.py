"""The peers' methods, each alone at its authors' thresholds, computed with their own libraries.

- PDQ (Meta, ThreatExchange): 256 bits, match at Hamming <= 31 (Meta's
  recommended threshold); <= 63 counted as "to review" here.
- pHash (ImageHash ``phash``, 64 bits) and dHash (ImageHash ``dhash``, 64
  bits: its row hash; the ``dhash`` package of Ben Hoyt's fingerprint tutorial
  hashes rows and columns, 128 bits, and is not this peer): <= 10 bits
  accepted, <= 16 to review.
- Goldberg et al. 2002 image signature as image-match computes it:
  normalised L2 distance < 0.40 match, < 0.45 to review (image-match's
  defaults). image-match no longer runs on current scikit-image, so quaid's
  numpy port (:mod:`engine.algorithms.goldberg`) computes it.

Pictures are read the way a user of those libraries would: Pillow, RGB, full
size (no quaid normalisation), so the comparison is with the methods as
published, not with quaid's variants of them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from engine.evaluation.manifest import Entry


@dataclass(frozen=True)
class Peer:
    """One published method: how to hash a picture, its bit count and its thresholds (shares of bits)."""

    name: str
    label: str
    extract: Callable[[Image.Image], np.ndarray]
    yes: float
    maybe: float
    bits: int | None  # None: a real-valued signature compared with ``distance``
    same_as: str  # the quaid algorithm that wraps the same library (see :func:`from_table`)


def _pdq(image: Image.Image) -> np.ndarray:
    import pdqhash

    bits, _quality = pdqhash.compute(np.ascontiguousarray(np.asarray(image, dtype=np.uint8)))
    return np.packbits(np.asarray(bits, dtype=np.uint8))


def _imagehash(function: Callable) -> Callable[[Image.Image], np.ndarray]:
    def extract(image: Image.Image) -> np.ndarray:
        return np.packbits(function(image).hash.flatten().astype(np.uint8))
    return extract


def _goldberg(image: Image.Image) -> np.ndarray:
    from engine.algorithms.goldberg import Goldberg
    from engine.picture import Picture

    picture = Picture(image, "", image.width, image.height, "peer")
    return np.frombuffer(Goldberg().extract(picture), dtype=np.uint8)


def _goldberg_distance(a: np.ndarray, b: np.ndarray) -> float:
    from engine.algorithms.goldberg import Goldberg

    return Goldberg().distance(a.tobytes(), b.tobytes())


PEERS: tuple[Peer, ...] = (
    Peer("peer-phash", "pHash 64 bit (<= 10 / <= 16)", _imagehash(imagehash.phash), 10 / 64, 16 / 64, 64,
         "phash"),
    Peer("peer-dhash", "dHash 64 bit (<= 10 / <= 16)", _imagehash(imagehash.dhash), 10 / 64, 16 / 64, 64,
         "dhash"),
    Peer("peer-pdq", "PDQ 256 bit (<= 31 / <= 63)", _pdq, 31 / 256, 63 / 256, 256, "pdq"),
    Peer("peer-goldberg", "Goldberg signature (< 0.40 / < 0.45)", _goldberg, 0.40 - 1e-9, 0.45 - 1e-9, None,
         "goldberg"),
)
_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1).astype(np.uint16)


def from_table(distances: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The peers' matrices taken from quaid's own distance table, when it has all four algorithms.

    quaid's ``phash``, ``dhash``, ``pdq`` and ``goldberg`` modules wrap the
    same libraries (ImageHash, pdqhash, the image-match port); they differ
    from the published use only by quaid's one-time normalisation to the
    working size, which these methods undo anyway (they reduce the picture
    to 8x8, 32x32 or 64x64 before hashing). Call :func:`peer_matrices` for
    the fully independent computation (``quaid evaluate --independent-peers``).
    The table must have been computed without ``all_orientations``.
    """
    if not all(p.same_as in distances for p in PEERS):
        return None
    return {p.name: distances[p.same_as] for p in PEERS}


def peer_matrices(folder: Path, references: list[Entry], queries: list[Entry],
                  progress: bool = True) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per peer, the (queries x references) distance matrix and its mean ms per picture."""
    features: dict[str, list[list[np.ndarray]]] = {p.name: [[], []] for p in PEERS}
    spent = dict.fromkeys(features, 0.0)
    for side, items in enumerate((references, queries)):
        for entry in _bar(items, progress, "peers"):
            with Image.open(folder / entry.path) as opened:
                image = opened.convert("RGB")
            for peer in PEERS:
                start = time.perf_counter()
                features[peer.name][side].append(peer.extract(image))
                spent[peer.name] += time.perf_counter() - start
    count = max(1, len(references) + len(queries))
    matrices = {p.name: _matrix(p, *features[p.name]) for p in PEERS}
    return matrices, {name: 1000 * s / count for name, s in spent.items()}


def _matrix(peer: Peer, refs: list[np.ndarray], queries: list[np.ndarray]) -> np.ndarray:
    if not refs or not queries:
        return np.zeros((len(queries), len(refs)))
    if peer.bits:
        ref_codes = np.stack(refs)
        return np.stack([_POPCOUNT[ref_codes ^ q].sum(axis=1) / peer.bits for q in queries])
    return np.array([[_goldberg_distance(q, r) for r in refs] for q in queries])


def _bar(items, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, disable=not enabled, leave=False)

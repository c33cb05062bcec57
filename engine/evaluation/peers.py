"""The peers' methods, each alone at its authors' thresholds, computed by the peers' own packages.

- pHash and dHash: ImageHash's ``phash`` and ``dhash`` (64 bits; ``dhash`` is
  ImageHash's row hash, not the 128-bit row-and-column hash of the ``dhash``
  package from Ben Hoyt's fingerprint tutorial): <= 10 bits accepted, <= 16
  to review.
- PDQ: pdqhash (256 bits), match at Hamming <= 31 (Meta's recommended
  threshold); <= 63 counted as "to review" here.
- The Goldberg et al. 2002 image signature as image-match 1.1.2 computes it:
  normalised L2 distance < 0.40 match, < 0.45 to review (image-match's
  defaults). image-match requires scikit-image < 0.13 and elasticsearch < 2.4,
  which do not install on the Python quaid runs on, so quaid's port
  (:func:`engine.algorithms.goldberg.signature`) computes it; the port gives
  image-match's signature bit for bit on the same pixels
  (``tests/test_conformance.py`` checks it against image-match's recorded
  output), and the row says so.

Each row names the package and the version that computed it (read from the
installed package). Pictures are read the way a user of those libraries
reads them: Pillow, RGB, full size, no EXIF rotation and no quaid
normalisation, so the rows measure the methods as published, never quaid's
variants of them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import imagehash
import numpy as np
import pdqhash
from PIL import Image

from engine.algorithms import goldberg
from engine.evaluation.manifest import Entry

#: image-match's release whose signature :mod:`engine.algorithms.goldberg` reproduces.
IMAGE_MATCH_VERSION = "1.1.2"


@dataclass(frozen=True)
class Peer:
    """One published method: how its package hashes a picture, its bit count and its thresholds (shares)."""

    name: str
    method: str  # what is computed, e.g. "pHash 64 bit"
    package: str  # the package and version that computed it
    thresholds: str  # the authors' thresholds as they state them
    extract: Callable[[Image.Image], np.ndarray]
    yes: float
    maybe: float
    bits: int | None  # None: a real-valued signature compared with image-match's distance

    @property
    def label(self) -> str:
        """The report's row name: method, package with version, thresholds in parentheses."""
        return f"{self.method}, {self.package} ({self.thresholds})"


def _imagehash(function: Callable) -> Callable[[Image.Image], np.ndarray]:
    def extract(image: Image.Image) -> np.ndarray:
        return np.packbits(function(image).hash.flatten().astype(np.uint8))
    return extract


def _pdq(image: Image.Image) -> np.ndarray:
    bits, _quality = pdqhash.compute(np.ascontiguousarray(np.asarray(image, dtype=np.uint8)))
    return np.packbits(np.asarray(bits, dtype=np.uint8))


def _goldberg(image: Image.Image) -> np.ndarray:
    return goldberg.signature(np.asarray(image))


def peers() -> tuple[Peer, ...]:
    """The four peers, each naming the installed version of the package that computes it."""
    imagehash_package = f"ImageHash {version('ImageHash')}"
    return (
        Peer("peer-phash", "pHash 64 bit", f"{imagehash_package} phash", "<= 10 / <= 16",
             _imagehash(imagehash.phash), 10 / 64, 16 / 64, 64),
        Peer("peer-dhash", "dHash 64 bit", f"{imagehash_package} dhash", "<= 10 / <= 16",
             _imagehash(imagehash.dhash), 10 / 64, 16 / 64, 64),
        Peer("peer-pdq", "PDQ 256 bit", f"pdqhash {version('pdqhash')}", "<= 31 / <= 63",
             _pdq, 31 / 256, 63 / 256, 256),
        Peer("peer-goldberg", "Goldberg signature",
             f"image-match {IMAGE_MATCH_VERSION} generate_signature, computed by quaid's bit-exact port",
             "< 0.40 / < 0.45", _goldberg, 0.40 - 1e-9, 0.45 - 1e-9, None),
    )


PEERS: tuple[Peer, ...] = peers()
_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1).astype(np.uint16)


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
    distance = goldberg.Goldberg().distance  # image-match's normalized_distance
    return np.array([[distance(q.tobytes(), r.tobytes()) for r in refs] for q in queries])


def _bar(items, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, disable=not enabled, leave=False)

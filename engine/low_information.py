"""Low-information pictures: blank pages, error pages, challenge and parked pages.

Why: such pictures carry too little to tell one from another. Every blank page
hashes alike, and every browser error page looks like every other one, so a
store that keeps them answers "the same picture" between captures of unrelated
sites and floods analysts with matches that mean nothing (dnstwist issue #240:
"pHash value is 100% because of white screenshots"). Pictures this detector
flags are stored as noise (:mod:`engine.noise`) and answered as such.

What is measured, on the grey thumbnail every algorithm shares
(:attr:`engine.picture.Picture.grey_thumbnail`, at most 512 px on its long side):

* ``pdq_quality``: PDQ's own quality score, 0-100 (the gradient sum of its 64 x 64
  luminance, as Meta's pdqhash computes it); Meta advises not to trust a PDQ hash
  below 50;
* ``ink``: the share of pixels more than :data:`INK_TOLERANCE` grey levels away from
  the picture's dominant tone (its background);
* ``entropy``: the grey-level histogram's Shannon entropy, in bits: a tinted header, a
  sidebar or a photo raise it even where the ink is sparse.

Only pictures that show next to nothing are flagged: PDQ rates them nearly flat, or
they have almost no ink (:data:`MAX_INK`) on a narrow range of tones
(:data:`MAX_ENTROPY`): blank captures, loading spinners, placeholders, a bare
"It works!". A browser error page or a challenge page is not: by these measures it
is as sparse as a phishing kit's bare sign-in form (a logo, one field, a button: 0.4 %
ink on a 1920-pixel-wide capture, PDQ quality 14), and a real page flagged would never
be reported as a match. Such pages are caught by the noise bank instead: once an
analyst marks one, the captures that match it are answered as noise
(:mod:`engine.noise`). ``benchmarks/noise_detector.py`` measures both on generated
noise pages and on real screenshots; the README's "Noise bank" section has the figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pdqhash

from engine.picture import Picture

INK_TOLERANCE = 24  # grey levels (of 255) from the background tone that still count as background
# share of the picture; with MAX_ENTROPY, a page showing next to nothing. A bare sign-in form has
# 0.26 % on a 2560-pixel-wide capture, 0.42 % on a 1920-pixel one: keep below both.
MAX_INK = 0.002
MAX_ENTROPY = 0.30  # bits; the evaluation set's real pages with the fewest tones have 1.4 % ink or more
PDQ_SCREEN = "pdq-screen"  # the algorithm whose feature carries the quality of the grey thumbnail
MIN_PDQ_QUALITY = 8  # PDQ quality (0-100) below which the picture is flat (the sign-in form at 2560 px: 9)



@dataclass(frozen=True)
class InformationMeasures:
    """How much a picture shows: see the module docstring for each measure."""

    pdq_quality: int
    ink: float
    entropy: float

    def to_json(self) -> dict:
        return {name: round(value, 4) if isinstance(value, float) else value
                for name, value in asdict(self).items()}


def measure(picture: Picture, pdq_quality: int | None = None) -> InformationMeasures:
    """The information measures of a decoded picture: ~1.5 ms on the grey thumbnail, ~7 ms when
    PDQ's quality must be computed too (``pdq_quality``: already known, see :func:`known_pdq_quality`)."""
    grey = picture.grey_thumbnail
    quality = _pdq_quality(grey) if pdq_quality is None else int(pdq_quality)
    return InformationMeasures(pdq_quality=quality, ink=_ink(grey), entropy=_entropy(grey))


def is_low_information(measures: InformationMeasures) -> bool:
    """True when the picture shows too little to be told apart from other pictures like it."""
    if measures.pdq_quality < MIN_PDQ_QUALITY:
        return True
    return measures.ink < MAX_INK and measures.entropy < MAX_ENTROPY


def detect(picture: Picture, pdq_quality: int | None = None) -> InformationMeasures | None:
    """The measures of ``picture`` when it is low-information, else None."""
    measures = measure(picture, pdq_quality)
    return measures if is_low_information(measures) else None


def known_pdq_quality(features: Mapping[str, Sequence[bytes]]) -> int | None:
    """PDQ's quality as the ``pdq-screen`` algorithm already computed it, when it did: it hashes the
    same grey thumbnail and keeps the quality in its feature's last byte (engine.algorithms.pdq)."""
    found = features.get(PDQ_SCREEN)
    return found[0][-1] if found else None


def _pdq_quality(grey: np.ndarray) -> int:
    _, quality = pdqhash.compute(np.repeat(grey[:, :, None], 3, axis=2))
    return int(quality)


def _ink(grey: np.ndarray) -> float:
    counts = np.bincount(grey.ravel(), minlength=256)
    background = int(counts.argmax())
    low, high = max(0, background - INK_TOLERANCE), min(255, background + INK_TOLERANCE)
    return 1.0 - float(counts[low:high + 1].sum()) / grey.size


def _entropy(grey: np.ndarray) -> float:
    counts = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    share = counts[counts > 0] / grey.size
    return float(-(share * np.log2(share)).sum())

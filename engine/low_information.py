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
  below 50, and a page PDQ rates below :data:`MIN_PDQ_QUALITY` is close to flat;
* ``ink``: the share of pixels more than :data:`INK_TOLERANCE` grey levels away from
  the picture's dominant tone (its background). A documentation or shop page writes
  on 10-40 % of its surface, a sparse login page on 0.8-4 %, an error page on 0.1-3 %;
* ``entropy``: the grey-level histogram's Shannon entropy, in bits. A login card on a
  tinted background, a sidebar, a photo or a coloured header all raise it above
  0.45 bits even when the ink is sparse; a few lines of text on one flat tone stay
  below 0.45.

A picture is low-information when PDQ rates it nearly flat, or when it has both
little ink (:data:`MAX_INK`) and a narrow range of tones (:data:`MAX_ENTROPY`).
The limits are deliberately cautious: a real page flagged would never be reported
as a match, while a noise page missed is caught once an analyst marks one like it
(:mod:`engine.noise`). Measured by ``benchmarks/noise_detector.py`` on 200 generated
noise pages (blank, browser and server errors, challenges, parked domains, default
server pages, placeholders) and on the 5,163 real screenshots of the evaluation set:
see the README's "Noise bank" section for the figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pdqhash

from engine.picture import Picture

INK_TOLERANCE = 24  # grey levels (of 255) from the background tone that still count as background
MAX_INK = 0.012  # share of the picture: below this and MAX_ENTROPY, a page says almost nothing
MAX_ENTROPY = 0.30  # bits: the informative pages of the evaluation set have 0.48 or more
MIN_PDQ_QUALITY = 15  # PDQ quality (0-100) below which the picture is flat whatever else it shows

REASON = "low-information"


@dataclass(frozen=True)
class InformationMeasures:
    """How much a picture shows: see the module docstring for each measure."""

    pdq_quality: int
    ink: float
    entropy: float

    def to_json(self) -> dict:
        return {name: round(value, 4) if isinstance(value, float) else value
                for name, value in asdict(self).items()}


def measure(picture: Picture) -> InformationMeasures:
    """The information measures of a decoded picture (a few milliseconds on the grey thumbnail)."""
    grey = picture.grey_thumbnail
    return InformationMeasures(pdq_quality=_pdq_quality(grey), ink=_ink(grey), entropy=_entropy(grey))


def is_low_information(measures: InformationMeasures) -> bool:
    """True when the picture shows too little to be told apart from other pictures like it."""
    if measures.pdq_quality < MIN_PDQ_QUALITY:
        return True
    return measures.ink < MAX_INK and measures.entropy < MAX_ENTROPY


def detect(picture: Picture) -> InformationMeasures | None:
    """The measures of ``picture`` when it is low-information, else None."""
    measures = measure(picture)
    return measures if is_low_information(measures) else None


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

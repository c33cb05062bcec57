"""The one contract every picture algorithm implements.

Modelled on Meta's python-threatexchange ``SignalType``: class-level metadata
(name, default thresholds, cost), one ``extract`` and one ``distance``. Features
are plain bytes so they can be stored in Redis without pickle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from engine.picture import Picture


class Algorithm(ABC):
    """A picture algorithm.

    Class attributes:
      name: unique, lower-case, stable (it names stored features).
      yes_threshold / maybe_threshold: default thresholds on ``distance``
        (distance <= yes -> YES, <= maybe -> MAYBE, else NO); calibrated
        values in the settings override them.
      cost: relative cost of ``distance`` (1 = a popcount); the pyramidal
        merger runs cheap algorithms first.
      hamming_bits: when set, ``extract`` returns exactly ``hamming_bits / 8``
        bytes of packed bits whose Hamming distance is meaningful, so the fast
        candidate index can use them.
      orientable: ``distance`` can be made mirror/rotation tolerant by
        extracting the query in several orientations (image-match's
        ``all_orientations``).
    """

    name: ClassVar[str]
    yes_threshold: ClassVar[float]
    maybe_threshold: ClassVar[float]
    cost: ClassVar[int] = 1
    hamming_bits: ClassVar[int | None] = None
    orientable: ClassVar[bool] = False

    @abstractmethod
    def extract(self, picture: Picture) -> bytes:
        """The picture's feature, as bytes."""

    @abstractmethod
    def distance(self, a: bytes, b: bytes) -> float:
        """Distance of two features in [0, 1]; 0 = identical."""


def hamming_fraction(a: bytes, b: bytes) -> float:
    """Share of differing bits between two equal-length packed bit strings."""
    if len(a) != len(b) or not a:
        raise ValueError("features of different lengths")
    x = np.frombuffer(a, dtype=np.uint8) ^ np.frombuffer(b, dtype=np.uint8)
    return float(np.unpackbits(x).sum()) / (8 * len(a))

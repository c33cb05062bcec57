"""The one contract every picture algorithm implements.

Modelled on Meta's python-threatexchange ``SignalType``: class-level metadata
(name, default thresholds, cost), one ``extract`` and one ``distance``. Features
are plain bytes so they can be stored in Redis without pickle.

Where to start: subclass :class:`Algorithm`, set the class attributes, write
``extract`` and ``distance``, add the class to ``engine.algorithms.ALGORITHMS``;
``tests/test_algorithms.py`` then runs the conformance kit on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from PIL import Image

from engine.errors import BadInput
from engine.picture import Picture

#: The eight dihedral orientations (identity, mirrors, rotations, transposes),
#: as image-match's ``all_orientations`` does for its Goldberg signature.
ORIENTATIONS: tuple[Image.Transpose | None, ...] = (
    None,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)


@dataclass(frozen=True)
class Comparison:
    """One algorithm's comparison of two features.

    ``reason``: why the pair must not be accepted whatever its distance, or None.
    A verifier sets it when its evidence says "same template, other content"
    (``"same-template"``): the pair then goes to review, never to accepted.
    """

    distance: float
    reason: str | None = None


class Algorithm(ABC):
    """A picture algorithm.

    Class attributes:
      name: unique, lower-case, stable (it names stored features).
      yes_threshold / maybe_threshold: default thresholds on ``distance``
        (distance <= yes -> YES, <= maybe -> MAYBE, else NO); calibrated
        values in the settings override them.
      cost: relative cost of ``distance`` (1 = a popcount); the pyramidal
        merger runs cheap algorithms first. Algorithms with ``cost >=
        COSTLY`` are verifiers: a pair compares them only when the cheap ones are
        unsure; a shortlist verifies its best-ranked candidates within a budget.
      hamming_bits: when set, the first ``hamming_bits / 8`` bytes of the
        feature (see :meth:`code`) are packed bits whose Hamming distance is
        meaningful, so the fast candidate index can use them.
      prefilter: offer :meth:`code` to the candidate index (needs ``hamming_bits``).
      orientable: ``distance`` can be made mirror/rotation tolerant by
        extracting the query in several orientations (image-match's
        ``all_orientations``).
      enabled_by_default: part of the default algorithm set when the settings
        do not mention the algorithm.
      votes: takes part in decisions. A candidate generator (region codes) sets
        it False: its codes only widen the shortlist, the others decide.
      version: what ``extract`` stores; raise it whenever a change makes stored
        features differ. Features of another version are never compared: the
        store refuses to open until ``quaid reindex`` re-extracts them.
      former_names: names this algorithm's features were stored under before it
        was renamed; a store still holding them is refused until ``quaid reindex``.
    """

    name: ClassVar[str]
    yes_threshold: ClassVar[float]
    maybe_threshold: ClassVar[float]
    cost: ClassVar[int] = 1
    hamming_bits: ClassVar[int | None] = None
    prefilter: ClassVar[bool] = False
    orientable: ClassVar[bool] = False
    enabled_by_default: ClassVar[bool] = True
    votes: ClassVar[bool] = True
    version: ClassVar[int] = 1
    former_names: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def extract(self, picture: Picture) -> bytes:
        """The picture's feature, as bytes."""

    @abstractmethod
    def distance(self, a: bytes, b: bytes) -> float:
        """Distance of two features in [0, 1]; 0 = identical. Malformed features -> BadInput."""

    def distance_within(self, a: bytes, b: bytes, bound: float) -> float:
        """``distance(a, b)`` when it is at most ``bound``; otherwise some value above ``bound``.

        A search only needs a verifier's exact distance when it may vote YES or
        MAYBE (``bound`` is the MAYBE threshold); a costly verifier overrides this
        to stop once the distance is known to exceed it. The default computes
        the distance.
        """
        return self.distance(a, b)

    def compare(self, a: bytes, b: bytes, bound: float | None = None) -> Comparison:
        """The distance (exact up to ``bound`` when given, see :meth:`distance_within`) and a reason.

        Algorithms that only measure a distance give no reason; a verifier with
        more evidence than a distance overrides this.
        """
        return Comparison(self.distance(a, b) if bound is None else self.distance_within(a, b, bound))

    def rank(self, query: bytes, stored: bytes) -> float | None:
        """A quick similarity (higher = more alike) that orders a shortlist before verification.

        Costly verifiers override it with something a fraction of their
        ``distance``'s cost; ``None`` means no opinion (the shortlist keeps the
        order of the cheap algorithms' merged distance).
        """
        return None

    def query_features(self, picture: Picture, orientations: bool = False) -> list[bytes]:
        """What a search compares of a query: the picture's own feature first (what storing it keeps),
        then, with ``orientations``, its other orientations (when :attr:`orientable`).

        A verifier overrides this to add other views of the query (ORB: the page
        inside a window frame, at the scale of the page itself). A search keeps the
        view with the strongest vote (:func:`engine.matching.strongest`).
        """
        if orientations and self.orientable:
            return self.extract_orientations(picture)
        return [self.extract(picture)]

    def extract_orientations(self, picture: Picture) -> list[bytes]:
        """The feature of ``picture`` in each of :data:`ORIENTATIONS` (identity first).

        Algorithms that can do this faster (PDQ computes its eight dihedral
        hashes from one DCT) override it.
        """
        return [self.extract(picture.transformed(method)) for method in ORIENTATIONS]

    def code(self, feature: bytes) -> bytes:
        """The packed-bit part of ``feature`` for the Hamming prefilter."""
        if not self.hamming_bits:
            raise BadInput(f"{self.name} has no packed-bit code")
        size = self.hamming_bits // 8
        if len(feature) < size:
            raise BadInput(f"{self.name}: feature of {len(feature)} bytes, expected at least {size}")
        return bytes(feature[:size])

    def codes(self, feature: bytes) -> dict[str, bytes]:
        """The candidate index's codes of a stored feature, by index table name (one: :meth:`code`).

        A generator with several codes per picture (one per region) names one table per code.
        """
        return {self.name: self.code(feature)}

    def probes(self, picture: Picture) -> dict[str, list[bytes]] | None:
        """The query's codes by table name, when they are not the codes of its features (else None).

        Region codes probe many places of the query against each stored region.
        """
        return None


#: ``cost`` from which an algorithm counts as a costly verifier (ORB-like: milliseconds a pair).
COSTLY = 100


def hamming_fraction(a: bytes, b: bytes) -> float:
    """Share of differing bits between two equal-length packed bit strings."""
    if len(a) != len(b) or not a:
        raise BadInput("features of different lengths")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count() / (8 * len(a))


def check_length(name: str, feature: bytes, size: int) -> None:
    """Raise :class:`BadInput` unless ``feature`` has exactly ``size`` bytes."""
    if len(feature) != size:
        raise BadInput(f"{name}: feature of {len(feature)} bytes, expected {size}")

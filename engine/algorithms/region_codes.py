"""Region codes as a candidate generator: band codes stored per picture, probes per query.

Why: global hashes lose scrolled, bannered, full-page, framed and mirrored copies before the
verifier sees them; band codes at a scale fixed by the page's width find them again
(:mod:`engine.candidates.regions` says how). This class is a generator, not a judge
(``votes = False``): its codes only widen the shortlist, and the other algorithms decide.

Stored feature: ``len(OFFSETS)`` codes of 8 bytes, then one byte whose bit i says slot i
holds a code. The index keeps one table per slot (``regions0`` ...), so each stored picture
contributes ``len(OFFSETS)`` codes and each query probes all of them.
"""

from __future__ import annotations

from engine.algorithms.base import Algorithm, check_length
from engine.candidates.regions import OFFSETS, page_grey, query_probes, stored_codes
from engine.errors import BadInput
from engine.picture import Picture

CODE_BYTES = 8
FEATURE_BYTES = CODE_BYTES * len(OFFSETS) + 1  # the codes, then one byte: bit i set = slot i holds a code


class RegionCodes(Algorithm):
    """Band codes for the candidate index (stored: one per slot; query: probes along the page)."""

    name = "regions"
    yes_threshold = 0.0  # never votes: thresholds only satisfy the contract
    maybe_threshold = 0.0
    hamming_bits = 8 * CODE_BYTES
    prefilter = True
    votes = False

    def extract(self, picture: Picture) -> bytes:
        codes = stored_codes(page_grey(picture))
        mask = sum(1 << i for i, code in enumerate(codes) if code is not None)
        return b"".join(code or bytes(CODE_BYTES) for code in codes) + bytes([mask])

    def distance(self, a: bytes, b: bytes) -> float:
        """Smallest share of differing bits over the band slots both pictures hold (1 if none;
        0 for identical features, flat pictures included)."""
        if self.slots(a) == self.slots(b):
            return 0.0
        pairs = [(x, y) for x, y in zip(self.slots(a), self.slots(b), strict=True) if x and y]
        return min((_fraction(x, y) for x, y in pairs), default=1.0)

    def slots(self, feature: bytes) -> list[bytes | None]:
        """The stored code of each band slot, None where the band was flat or off the page."""
        check_length(self.name, feature, FEATURE_BYTES)
        mask = feature[-1]
        if mask >> len(OFFSETS):
            raise BadInput(f"{self.name}: malformed slot mask {mask}")
        return [feature[i * CODE_BYTES:(i + 1) * CODE_BYTES] if mask >> i & 1 else None
                for i in range(len(OFFSETS))]

    def codes(self, feature: bytes) -> dict[str, bytes]:
        return {slot_name(i): code for i, code in enumerate(self.slots(feature)) if code}

    def probes(self, picture: Picture) -> dict[str, list[bytes]]:
        """Every query probe against every stored slot: a band may have moved to any place."""
        probes = query_probes(picture)
        return {slot_name(i): probes for i in range(len(OFFSETS))} if probes else {}


def slot_name(slot: int) -> str:
    """The index table of a band slot."""
    return f"{RegionCodes.name}{slot}"


def _fraction(a: bytes, b: bytes) -> float:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count() / (8 * CODE_BYTES)

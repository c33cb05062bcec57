"""The explicit registry of picture algorithms: one list, unique names, lookup by name.

No import-time discovery (as python-threatexchange's explicit signal-type list):
an algorithm exists for quaid when its class is in :data:`ALGORITHMS`. Names
name stored features, so they must stay stable.
"""

from __future__ import annotations

from engine.algorithms.ahash import AHash, AHash256
from engine.algorithms.base import Algorithm
from engine.algorithms.dhash import DHash, DHash256
from engine.algorithms.forbild import ForBild
from engine.algorithms.forbild_screen import ForBildScreen
from engine.algorithms.goldberg import Goldberg
from engine.algorithms.goldberg_screen import GoldbergScreen
from engine.algorithms.orb import Orb
from engine.algorithms.pdq import PDQ
from engine.algorithms.pdq_screen import PDQScreen
from engine.algorithms.phash import PHash, PHash256
from engine.algorithms.pixel_tlsh import PixelTLSH
from engine.algorithms.region_codes import RegionCodes
from engine.algorithms.whash import WHash, WHash256
from engine.errors import BadInput

ALGORITHMS: tuple[type[Algorithm], ...] = (
    AHash, PHash, DHash, WHash,
    AHash256, PHash256, DHash256, WHash256,
    PDQ,
    PDQScreen,
    PixelTLSH,
    Goldberg,
    GoldbergScreen,
    ForBild,
    ForBildScreen,
    Orb,
    RegionCodes,
)


def _check_unique(classes: tuple[type[Algorithm], ...]) -> dict[str, type[Algorithm]]:
    by_name: dict[str, type[Algorithm]] = {}
    for cls in classes:
        if cls.name in by_name:
            raise RuntimeError(f"two algorithms named {cls.name!r}: {by_name[cls.name]} and {cls}")
        by_name[cls.name] = cls
    return by_name


BY_NAME: dict[str, type[Algorithm]] = _check_unique(ALGORITHMS)


def names() -> list[str]:
    """Every registered algorithm name, in registry order."""
    return list(BY_NAME)


def get(name: str) -> type[Algorithm]:
    """The algorithm class called ``name``; unknown names -> :class:`BadInput`."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise BadInput(f"unknown algorithm {name!r}; known: {', '.join(BY_NAME)}") from None

"""A picture made ready to add: everything that does not depend on the store, computed at once.

Why apart from :mod:`engine.core`: a bulk ingest (:mod:`engine.ingest`) computes this in worker
processes, in parallel, and the process that owns the store then only searches and writes.
Decoding, every stored feature, the query's index codes and the kept thumbnail depend on the
picture alone, so computing them early changes nothing in what is stored: ``Quaid.add`` goes
through the same two steps in one process.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from engine.budget import PixelBudget
from engine.config import Settings
from engine.low_information import detect, known_pdq_quality
from engine.matching import Matcher, Query
from engine.picture import Picture, load_picture

THUMBNAIL_QUALITY = 85  # JPEG quality of stored thumbnails


@dataclass(frozen=True)
class Prepared:
    """A decoded picture's features, query codes and kept image (plain bytes: it crosses processes)."""

    id: str  # SHA-256 of the bytes
    size: int  # bytes
    width: int  # pixels, as submitted
    height: int
    format: str
    query_features: dict[str, list[bytes]]  # algorithm -> one feature, or one per orientation
    codes: dict[str, list[bytes]]  # the query's candidate-index codes
    image: tuple[bytes, str] | None  # what settings.keep stores, with its content type
    low_information: dict | None = None  # the detector's measures when it flags the picture (engine.noise)


class PreparedQuery(Query):
    """A query whose features were computed elsewhere (no picture is kept)."""

    def __init__(self, matcher: Matcher, prepared: Prepared) -> None:
        super().__init__(matcher, None)  # type: ignore[arg-type]
        self._features = {name: list(values) for name, values in prepared.query_features.items()}


def prepare(matcher: Matcher, settings: Settings, data: bytes, budget: PixelBudget | None = None) -> Prepared:
    """Decode ``data`` and compute what adding it stores (raises the decoder's errors)."""
    picture = load_picture(data, max_pixels=settings.max_pixels, working_side=settings.working_side,
                           budget=budget)
    query = matcher.query(picture)
    for algorithm in matcher.algorithms:
        query.features(algorithm.name)
    codes = matcher.query_codes(query)
    features = {name: query.features(name) for name in query.extracted}
    flagged = detect(picture, known_pdq_quality(features)) if settings.noise_detector else None
    return Prepared(hashlib.sha256(data).hexdigest(), len(data), picture.original_width,
                    picture.original_height, picture.format, features, codes,
                    kept_image(settings, data, picture), flagged.to_json() if flagged else None)


def kept_image(settings: Settings, data: bytes, picture: Picture) -> tuple[bytes, str] | None:
    """What ``settings.keep`` asks to store: nothing, a JPEG thumbnail, or the original bytes."""
    if settings.keep == "original":
        return data, f"image/{picture.format.lower()}" if picture.format != "unknown" else \
            "application/octet-stream"
    if settings.keep != "thumbnail":
        return None
    image = picture.image.copy()
    image.thumbnail((settings.thumbnail_side, settings.thumbnail_side))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue(), "image/jpeg"

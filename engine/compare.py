"""The visual difference of two pictures known to the engine: two stored ones, or a query and a stored one.

Where to start: :func:`compare_stored` (``GET /api/v1/compare?a=&b=``, ``quaid compare A B``),
:func:`compare_query` (``POST /api/v1/compare``, ``quaid compare FILE B``) and
:func:`compare_review` (``GET /api/v1/review/<item>/compare``, the review queue). All read
the ORB feature the verifier compares (keypoints, thumbnail and detail picture): the store
keeps it for every picture it extracted, so the originals need not be kept. The drawing is
:mod:`engine.visual_diff`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import NotComparable, NotFound
from engine.visual_diff import VisualDiff, render_best

if TYPE_CHECKING:
    from engine.core import Quaid
    from engine.review import ReviewQueue

FEATURE = "orb"  # the verifier's feature: keypoints to align, thumbnail and detail picture to draw


def compare_stored(quaid: Quaid, a: str, b: str) -> VisualDiff:
    """Stored picture ``b`` aligned onto stored picture ``a``, their differing regions marked."""
    return render_best([stored_feature(quaid, a)], stored_feature(quaid, b))


def compare_query(quaid: Quaid, data: bytes, b: str) -> VisualDiff:
    """Stored picture ``b`` aligned onto the query ``data`` (in whichever of the query's
    orientations aligns best, as a search compares it)."""
    target = stored_feature(quaid, b)  # 404 / 422 before decoding the query
    return render_best(query_features(quaid, data), target)


def compare_review(quaid: Quaid, reviews: ReviewQueue, item: str) -> VisualDiff:
    """A review item's stored picture aligned onto its searched picture: from the searched picture's
    stored features when it was added since, else from the features the queue kept of it."""
    found = reviews.get(item)
    if found is None:
        raise NotFound(f"no review item {item[:80]}")
    if found.get("evidence"):
        raise NotComparable("this item was searched by a partner's hashes: there is no picture to draw")
    target = stored_feature(quaid, found["match"])
    if quaid.records.get(found["query"]) is not None:
        return render_best([stored_feature(quaid, found["query"])], target)
    kept = reviews.query_features(found["query"])
    if not kept:
        raise NotComparable("the searched picture is not stored and its features are no longer kept: "
                            "compare it by uploading it (POST /api/v1/compare)")
    return render_best(kept, target)


def query_features(quaid: Quaid, data: bytes) -> list[bytes]:
    """The query's ORB features, one per orientation searched (decoded under the engine's limits)."""
    _check_enabled(quaid)
    return quaid.matcher.query(quaid.load_query(data)).features(FEATURE)


def stored_feature(quaid: Quaid, picture_id: str) -> bytes:
    """The stored ORB feature of ``picture_id``: 404 when unknown, 422 when it has none."""
    record = quaid.get(picture_id)  # NotFound for an unknown id
    feature = quaid.records.feature(picture_id, FEATURE)
    if feature is None:
        if record.hash_only:
            raise NotComparable(f"picture {picture_id} is a partner's hashes only: no picture to draw")
        raise NotComparable(f"picture {picture_id} has no stored {FEATURE} feature to align")
    return feature


def _check_enabled(quaid: Quaid) -> None:
    if FEATURE not in {a.name for a in quaid.matcher.algorithms}:
        raise NotComparable(f"the {FEATURE} verifier is not enabled on this server: nothing aligns pictures")


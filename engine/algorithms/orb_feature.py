"""The stored ORB feature: keypoints, binary descriptors and two grey pictures, as plain bytes.

Why a thumbnail: keypoint inliers alone cannot tell "the same page, modified"
from "another page of the same site" (a page whose sidebar and menus fill the
screen gives hundreds of inliers against its sibling pages). The verifier
therefore aligns the two pictures with the keypoints and then compares their
pixels (:mod:`engine.algorithms.aligned_diff`), which needs the pixels.

The detail picture (the grey picture ORB verifies, at most 1280 wide) serves the second look of
:mod:`engine.algorithms.detail_check`, which resolves single words: it is
decoded only for the few pairs the thumbnail finds nearly identical.

Layout (little-endian, no pickle)::

    header   "<4sHHHII": magic b"QOR2", working width, working height,
             keypoint count n, thumbnail byte length t, detail byte length d
    points   n x 2 float32: keypoint x, y in working-size pixels
    desc     n x 32 uint8: ORB (rBRIEF) descriptors, Rublee et al. 2011
    thumb    t bytes: JPEG of the grey thumbnail (at most 512 wide: ``Picture.grey_thumbnail`` when landscape)
    detail   d bytes: JPEG of the grey detail picture (``detail_check.detail_picture``)

Size: 40 bytes a keypoint (<= 24 KB for the 600 kept), the thumbnail's JPEG
(typically 10-25 KB) and the detail's (typically 50-80 KB; it lives in the
disk tier, not in Redis). JPEG rather than PNG: a quarter of the size on
photos, five times faster to decode and far faster to encode (a query's
feature is encoded too), and its ringing stays inside the comparisons'
tolerance.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property, lru_cache

import cv2
import numpy as np

from engine.algorithms import aligned_diff
from engine.errors import BadInput

MAGIC = b"QOR2"
HEADER = struct.Struct("<4sHHHII")
DESCRIPTOR_BYTES = 32  # ORB's 256-bit rBRIEF descriptor
THUMB_QUALITY = 80  # JPEG quality: ringing stays well inside aligned_diff's tolerance
DETAIL_QUALITY = 75  # JPEG quality of the detail picture: ringing stays far inside detail_check's tolerance


@dataclass(frozen=True)
class OrbFeature:
    """A decoded ORB feature. ``points`` are in working-size pixels; ``thumb`` is grey uint8.

    The thumbnail is decoded on first use: most candidates of a shortlist are
    settled by their keypoints alone (no alignment), and a JPEG decode costs
    about as much as their whole keypoint match.
    """

    width: int
    height: int
    points: np.ndarray  # n x 2 float32
    descriptors: np.ndarray  # n x 32 uint8
    thumb_jpeg: bytes
    detail_jpeg: bytes

    @cached_property
    def thumb(self) -> np.ndarray:
        """The grey thumbnail (h x w uint8); a corrupt one -> BadInput."""
        return _decode(self.thumb_jpeg, "thumbnail")

    def detail(self) -> np.ndarray:
        """The grey detail picture (h x w uint8), decoded anew; a corrupt one -> BadInput.

        Not kept on the feature: parsed features are cached (:func:`unpack`), and a
        detail picture is a megabyte that a search needs for one or two pairs.
        """
        return _decode(self.detail_jpeg, "detail picture")

    @cached_property
    def cell_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """The thumbnail's per-cell mean and deviation (:func:`aligned_diff.cell_stats`), computed once."""
        return aligned_diff.cell_stats(self.thumb)

    @property
    def thumb_scale(self) -> float:
        """Thumbnail pixels per working-size pixel."""
        return self.thumb.shape[1] / self.width


def pack(width: int, height: int, points: np.ndarray, descriptors: np.ndarray, thumb: np.ndarray,
         detail: np.ndarray) -> bytes:
    """Serialise one feature (see the module docstring for the layout)."""
    thumb_bytes = _encode(thumb, THUMB_QUALITY)
    detail_bytes = _encode(detail, DETAIL_QUALITY)
    n = len(points)
    header = HEADER.pack(MAGIC, width, height, n, len(thumb_bytes), len(detail_bytes))
    return b"".join([
        header,
        np.ascontiguousarray(points, dtype="<f4").tobytes(),
        np.ascontiguousarray(descriptors, dtype=np.uint8).tobytes(),
        thumb_bytes,
        detail_bytes,
    ])


def _encode(picture: np.ndarray, quality: int) -> bytes:
    ok, encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("cannot encode a picture of the ORB feature")
    return encoded.tobytes()


def _decode(data: bytes, what: str) -> np.ndarray:
    picture = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if picture is None:
        raise BadInput(f"ORB feature {what} is corrupt")
    return picture


@lru_cache(maxsize=128)
def unpack(data: bytes) -> OrbFeature:
    """Parse feature bytes; cached because a query's feature is compared with a whole shortlist."""
    if len(data) < HEADER.size:
        raise BadInput("ORB feature too short")
    magic, width, height, n, thumb_len, detail_len = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BadInput("not an ORB feature")
    points_end = HEADER.size + 8 * n
    desc_end = points_end + DESCRIPTOR_BYTES * n
    if len(data) != desc_end + thumb_len + detail_len or width < 1 or height < 1:
        raise BadInput("ORB feature has an inconsistent length")
    points = np.frombuffer(data, dtype="<f4", count=2 * n, offset=HEADER.size).reshape(n, 2)
    descriptors = np.frombuffer(data, dtype=np.uint8, count=DESCRIPTOR_BYTES * n, offset=points_end)
    if thumb_len == 0 or detail_len == 0:
        raise BadInput("ORB feature has no thumbnail or no detail picture")
    descriptors = descriptors.reshape(n, DESCRIPTOR_BYTES)
    thumb_end = desc_end + thumb_len
    return OrbFeature(width, height, points.astype(np.float32), descriptors, data[desc_end:thumb_end],
                      data[thumb_end:])

"""The stored ORB feature: keypoints, binary descriptors and a small grey thumbnail, as plain bytes.

Why a thumbnail: keypoint inliers alone cannot tell "the same page, modified"
from "another page of the same site" (a page whose sidebar and menus fill the
screen gives hundreds of inliers against its sibling pages). The verifier
therefore aligns the two pictures with the keypoints and then compares their
pixels (:mod:`engine.algorithms.aligned_diff`), which needs the pixels.

Layout (little-endian, no pickle)::

    header   "<4sHHHI": magic b"QOR1", working width, working height,
             keypoint count n, thumbnail byte length t
    points   n x 2 float32: keypoint x, y in working-size pixels
    desc     n x 32 uint8: ORB (rBRIEF) descriptors, Rublee et al. 2011
    thumb    t bytes: JPEG of the grey thumbnail (``Picture.grey_thumbnail``, long side <= 512)

Size: 40 bytes a keypoint (<= 24 KB for the 600 kept) plus the JPEG
(typically 10-25 KB for a 512-pixel thumbnail). JPEG rather than PNG: a
quarter of the size on photos and five times faster to decode, and its
ringing stays inside the comparison's tolerance.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property, lru_cache

import cv2
import numpy as np

from engine.algorithms import aligned_diff
from engine.errors import BadInput

MAGIC = b"QOR1"
HEADER = struct.Struct("<4sHHHI")
DESCRIPTOR_BYTES = 32  # ORB's 256-bit rBRIEF descriptor
THUMB_QUALITY = 80  # JPEG quality: ringing stays well inside aligned_diff's tolerance


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

    @cached_property
    def thumb(self) -> np.ndarray:
        """The grey thumbnail (h x w uint8); a corrupt one -> BadInput."""
        thumb = cv2.imdecode(np.frombuffer(self.thumb_jpeg, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
        if thumb is None:
            raise BadInput("ORB feature thumbnail is corrupt")
        return thumb

    @cached_property
    def cell_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """The thumbnail's per-cell mean and deviation (:func:`aligned_diff.cell_stats`), computed once."""
        return aligned_diff.cell_stats(self.thumb)

    @property
    def thumb_scale(self) -> float:
        """Thumbnail pixels per working-size pixel."""
        return self.thumb.shape[1] / self.width


def pack(width: int, height: int, points: np.ndarray, descriptors: np.ndarray, thumb: np.ndarray) -> bytes:
    """Serialise one feature (see the module docstring for the layout)."""
    ok, encoded = cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
    if not ok:
        raise ValueError("cannot encode the thumbnail")
    thumb_bytes = encoded.tobytes()
    n = len(points)
    header = HEADER.pack(MAGIC, width, height, n, len(thumb_bytes))
    return b"".join([
        header,
        np.ascontiguousarray(points, dtype="<f4").tobytes(),
        np.ascontiguousarray(descriptors, dtype=np.uint8).tobytes(),
        thumb_bytes,
    ])


@lru_cache(maxsize=128)
def unpack(data: bytes) -> OrbFeature:
    """Parse feature bytes; cached because a query's feature is compared with a whole shortlist."""
    if len(data) < HEADER.size:
        raise BadInput("ORB feature too short")
    magic, width, height, n, thumb_len = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BadInput("not an ORB feature")
    points_end = HEADER.size + 8 * n
    desc_end = points_end + DESCRIPTOR_BYTES * n
    if len(data) != desc_end + thumb_len or width < 1 or height < 1:
        raise BadInput("ORB feature has an inconsistent length")
    points = np.frombuffer(data, dtype="<f4", count=2 * n, offset=HEADER.size).reshape(n, 2)
    descriptors = np.frombuffer(data, dtype=np.uint8, count=DESCRIPTOR_BYTES * n, offset=points_end)
    if thumb_len == 0:
        raise BadInput("ORB feature has no thumbnail")
    descriptors = descriptors.reshape(n, DESCRIPTOR_BYTES)
    return OrbFeature(width, height, points.astype(np.float32), descriptors, data[desc_end:])

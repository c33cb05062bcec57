"""Pillow's Lanczos resize of an 8-bit grey picture, bit for bit, as two matrix products.

Why: pHash and dHash are ImageHash's, which resize the whole grey picture
with Pillow's Lanczos filter (``Image.resize(size, LANCZOS)``). On a
1280x800 screenshot each resize costs ~4 ms in Pillow's scalar C loop,
whatever the target size, because the filter's support grows with the
reduction (~240 source pixels per output pixel to reach 32 columns). The
same arithmetic as two matrix products runs in BLAS at a fraction of that.

Exactness: Pillow (``src/libImaging/Resample.c``) resizes 8-bit pictures in
fixed point. Per axis it computes the Lanczos-3 weights of each output pixel
in double precision, normalises them to sum 1 and rounds them to integers at
22 fractional bits; each output is ``clip8((2**21 + sum(pixel * weight)) >> 22)``,
the horizontal pass first (rounded to 8 bits), then the vertical pass. Here
the weights are the same integers, computed with the same double-precision
steps (``math.sin`` is the C library's ``sin``, as in Pillow), and the sums
run in float64: every product and partial sum is an integer below 2**53, so
each is exact in any summation order and the shift is an exact floor. The
pass order follows the installed Pillow's rule (it changed in Pillow 13).
``tests/test_equivalence.py`` compares the result with Pillow's on drawn
pages, photos, noise, flat pictures and odd sizes.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache

import numpy as np
import PIL
from PIL import Image
from threadpoolctl import ThreadpoolController

PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed point for 8-bit pictures
ONE = float(1 << PRECISION_BITS)
HALF = float(1 << (PRECISION_BITS - 1))
SUPPORT = 3.0  # Lanczos-3
VERTICAL_PASS_FIRST_RULE = int(PIL.__version__.split(".")[0]) >= 13  # see _horizontal_first
log = logging.getLogger(__name__)


def _sinc(x: np.ndarray) -> np.ndarray:
    """Pillow's ``sinc_filter``; ``sin`` is the C library's (``math.sin``), as Pillow's is:
    NumPy's vectorised ``sin`` may differ in the last bit, which can move a rounded weight."""
    y = x * math.pi
    sine = np.fromiter(map(math.sin, y.ravel().tolist()), np.float64, y.size).reshape(y.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0.0, 1.0, sine / y)


@lru_cache(maxsize=256)
def weights(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's fixed-point Lanczos weights from ``in_size`` to ``out_size`` pixels, as an
    ``in_size x out_size`` float64 matrix of integers (column j: output pixel j's weights).

    Pillow's ``precompute_coeffs`` and ``normalize_coeffs_8bpc``, step by step in the same
    double-precision operations (NumPy's elementwise arithmetic rounds as C's does; the
    sums run left to right, as Pillow's loop). ~1-2 ms for a new size; cached.
    """
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = SUPPORT * filterscale
    inverse = 1.0 / filterscale
    center = (np.arange(out_size) + 0.5) * scale
    # int(): truncation toward zero, as C's cast; then clamped to the picture
    xmin = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    taps = np.arange(max(int(xmax.max()), 1))
    used = taps[None, :] < xmax[:, None]
    x = ((taps[None, :] + xmin[:, None]) - center[:, None] + 0.5) * inverse
    kernel = np.where(used & (-3.0 <= x) & (x < 3.0), _sinc(x) * _sinc(x / 3), 0.0)
    total = np.cumsum(kernel, axis=1)[:, -1:]  # left to right, as Pillow's loop; trailing zeros add nothing
    kernel = np.where(total != 0.0, kernel / np.where(total != 0.0, total, 1.0), kernel)
    fixed = np.where(kernel < 0, np.trunc(kernel * ONE - 0.5), np.trunc(kernel * ONE + 0.5))
    matrix = np.zeros((in_size, out_size))
    rows = (taps[None, :] + xmin[:, None])[used]
    matrix[rows, np.nonzero(used)[0]] = fixed[used]
    return matrix


def _to_8bit(sums: np.ndarray) -> np.ndarray:
    """Pillow's ``clip8``: the exact fixed-point sum shifted right (a floor) and clamped to 0..255."""
    return np.clip(np.floor((sums + HALF) / ONE), 0, 255)


def _horizontal_first(width: int, height: int, size: tuple[int, int]) -> bool:
    """Pillow's pass order. Pillow 13 runs the vertical pass first when the height shrinks by more
    than twice as many pixels as the width (a cheaper second pass); earlier Pillows always ran the
    horizontal pass first. The order matters: the first pass is rounded to 8 bits."""
    if not VERTICAL_PASS_FIRST_RULE:
        return True
    shrink = height - size[1]
    return not (shrink > 0 and shrink > (width - size[0]) * 2)


def lanczos_resize(grey: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``Image.fromarray(grey).resize(size, Image.LANCZOS)`` pixels, ``size`` = (width, height).

    ``grey``: H x W, 8-bit values (uint8, or float64 to skip a conversion).
    Returns uint8. If this Pillow resizes differently (checked once per
    process, :func:`matches_pillow`), Pillow itself resizes.
    """
    if not matches_pillow():
        image = Image.fromarray(np.asarray(grey, dtype=np.uint8), "L")
        return np.asarray(image.resize(size, Image.Resampling.LANCZOS))
    _one_blas_thread()
    return _resize(np.asarray(grey, dtype=np.float64), size)


@lru_cache(maxsize=1)
def _one_blas_thread() -> None:
    """Hold the process's BLAS libraries to one thread, once and for good (not per product: the
    limit is process-wide, so per-call limits in concurrent request threads would undo each other).

    Why: the products are ~2 ms; OpenBLAS's pool costs more than it saves
    there, and where the process is held to one CPU (a pinned worker, a
    container's CPU quota) its second thread spins against the first: a
    search measured 95 -> 175 ms on one pinned core. The service runs
    requests in parallel instead. A program that imports ``engine`` as a
    library gets the same setting once it computes a hash.
    """
    ThreadpoolController().limit(limits=1, user_api="blas")  # never restored: see above


def _resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = pixels.shape
    horizontal_first = _horizontal_first(width, height, size)
    # Pillow skips a pass whose size does not change (no rounding either)
    if horizontal_first and size[0] != width:
        pixels = _to_8bit(pixels @ weights(width, size[0]))
    if size[1] != height:
        pixels = _to_8bit(weights(height, size[1]).T @ pixels)
    if not horizontal_first and size[0] != width:
        pixels = _to_8bit(pixels @ weights(width, size[0]))
    return pixels.astype(np.uint8)


@lru_cache(maxsize=1)
def matches_pillow() -> bool:
    """Whether this module reproduces the installed Pillow (both pass orders, up- and downscaling).

    A future Pillow could change its resampler again (13.0 changed the pass
    order); then quaid falls back to Pillow rather than compute other hashes.
    """
    rng = np.random.default_rng(7)
    for shape, size in (((80, 128), (32, 32)), ((80, 128), (9, 8)), ((300, 40), (32, 32)),
                        ((7, 5), (9, 8)), ((40, 300), (16, 16))):
        grey = rng.integers(0, 256, shape, dtype=np.uint8)
        reference = np.asarray(Image.fromarray(grey, "L").resize(size, Image.Resampling.LANCZOS))
        if not np.array_equal(_resize(grey.astype(np.float64), size), reference):
            log.warning("this Pillow resizes differently from engine.resample: using Pillow (slower)")
            return False
    return True

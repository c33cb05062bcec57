"""The two pixel operations of Rust's ``image`` crate 0.23.14 that ForBild's reference uses.

The ForBild reference (pazifical/forbild-hashing, which depends on ``image =
"0.23.14"``) turns a picture grey with ``DynamicImage::grayscale`` and shrinks
it with ``resize_exact(16, 16, FilterType::Gaussian)``. Their arithmetic
(``src/color.rs`` and ``src/imageops/sample.rs`` at tag v0.23.14) is repeated
here in float32, operation by operation, so the 16x16 grey is the crate's:

- grey: ``0.2126 * r + 0.7152 * g + 0.0722 * b`` in f32, truncated to u8;
- resize: separable, vertical pass first, each pass rounding to u8 (f32
  ``round``: halves away from zero) after clamping; Gaussian kernel of radius
  0.5 (support 3) on coordinates divided by the scale ratio; weights summed
  in order and the weighted sum divided by their total.

``exp`` is evaluated in float64 and rounded to float32, i.e. correctly
rounded, as glibc's ``expf`` (which Rust's ``f32::exp`` calls on Linux) is.
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32
SRGB_LUMA = (F32(0.2126), F32(0.7152), F32(0.0722))
GAUSSIAN_SUPPORT = F32(3.0)
GAUSSIAN_RADIUS = F32(0.5)


def grayscale(rgb: np.ndarray) -> np.ndarray:
    """``DynamicImage::grayscale`` of 8-bit RGB(A) (alpha ignored): H x W uint8."""
    channels = [rgb[..., c].astype(F32) for c in range(3)]
    luma = SRGB_LUMA[0] * channels[0] + SRGB_LUMA[1] * channels[1]
    luma = luma + SRGB_LUMA[2] * channels[2]
    return luma.astype(np.uint8)  # NumCast from f32: truncation toward zero (values are >= 0)


def resize_gaussian(grey: np.ndarray, width: int, height: int) -> np.ndarray:
    """``imageops::resize(grey, width, height, FilterType::Gaussian)`` of an H x W uint8 picture."""
    tall = _sample(grey.astype(F32), height)  # vertical_sample: along axis 0
    return _sample(tall.T.astype(F32), width).T.copy()


def _sample(pixels: np.ndarray, new_size: int) -> np.ndarray:
    """One pass along axis 0 (``vertical_sample``), rounded to u8 as the crate does."""
    size = pixels.shape[0]
    ratio = F32(size) / F32(new_size)
    sratio = F32(1.0) if ratio < 1 else ratio
    support = GAUSSIAN_SUPPORT * sratio
    out = np.empty((new_size, pixels.shape[1]), dtype=np.uint8)
    for index in range(new_size):
        centre = (F32(index) + F32(0.5)) * ratio
        left = min(max(math.floor(centre - support), 0), size - 1)
        right = min(max(math.ceil(centre + support), left + 1), size)
        centre = centre - F32(0.5)
        weights = [_gaussian((F32(i) - centre) / sratio) for i in range(left, right)]
        total = F32(0.0)
        for weight in weights:
            total = F32(total + weight)
        acc = np.zeros(pixels.shape[1], dtype=F32)
        for offset, weight in enumerate(weights):
            acc = acc + pixels[left + offset] * weight
        value = np.clip(acc / total, F32(0.0), F32(255.0))
        out[index] = _round_half_away(value)
    return out


def _gaussian(x: np.float32) -> np.float32:
    """The crate's ``gaussian(x, 0.5)`` in f32."""
    scale = F32(1.0) / (F32(math.sqrt(F32(2.0) * F32(math.pi))) * GAUSSIAN_RADIUS)
    exponent = -(x * x) / (F32(2.0) * (GAUSSIAN_RADIUS * GAUSSIAN_RADIUS))
    return F32(scale * F32(math.exp(float(exponent))))


def _round_half_away(values: np.ndarray) -> np.ndarray:
    """Rust's f32 ``round`` (halves away from zero) of non-negative values, as uint8."""
    whole = np.floor(values)
    return (whole + (values - whole >= F32(0.5))).astype(np.uint8)

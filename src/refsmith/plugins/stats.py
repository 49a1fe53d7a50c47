"""Robust statistics shared by the built-in plug-ins and the combiners (numpy only).

Per-pixel sigma clipping with thresholds taken from the pixel's own few samples biases
the scatter low: read noise came out 21 % low with 5 CDS samples per pixel, 8 % with 10,
2 % with 36. :func:`clipped_stats` therefore clips at ``sigma`` times the larger of a
*pooled* scatter (the same for every pixel of an amplifier, :func:`pooled_sigma`) and the
pixel's own scatter, so normal pixels are clipped only in the far tails, while noisy
pixels keep their own, larger, threshold. Pixels whose scatter is more than twice the
pooled one (a cosmic ray, a noisy pixel) get a median-centred, MAD-scaled threshold
instead, computed on those pixels only. Simulated (200,000 pixels, noise varying by
+-30 %, 1 % noisy pixels, 0.2 % outliers), the variance of normal pixels comes out within
0.4 % at ``sigma = 4`` with 5, 10 and 36 samples per pixel (the old clipping: -21 %).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["ClippedStats", "clipped_stats", "median_chi_factor", "pooled_sigma",
           "robust_sigma", "robust_zscore", "truncation_variance_factor"]

_MAD_TO_SIGMA = 1.482602218505602
_WIDE = 2.0  # scatter above this many pooled sigma: the median/MAD path
CHUNK = 1 << 16  # pixels per pass of clipped_stats


def truncation_variance_factor(k: float) -> float:
    """Variance of a normal distribution truncated at +-k sigma, in units of sigma**2.

    Dividing the variance of the values kept by a k-sigma clip by this factor removes the
    bias of clipping (2.7 % of the variance at k = 3, 0.1 % at k = 4) for normal data.
    """
    if not math.isfinite(k) or k <= 0:
        return 1.0
    inside = math.erf(k / math.sqrt(2.0))
    density = math.exp(-0.5 * k * k) / math.sqrt(2.0 * math.pi)
    return 1.0 - 2.0 * k * density / inside


def median_chi_factor(dof: float) -> float:
    """Median of ``s / sigma`` when ``s**2 = sigma**2 chi2(dof) / dof`` (Wilson-Hilferty).

    The median over pixels of per-pixel standard deviations from ``dof`` degrees of
    freedom, divided by this, estimates sigma without bias (0.916 for dof = 4).
    """
    if dof <= 0:
        return 1.0
    return math.sqrt((1.0 - 2.0 / (9.0 * dof)) ** 3)


def robust_sigma(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Standard deviation from the median absolute deviation (1.4826 MAD), NaN-aware."""
    median = np.nanmedian(values, axis=axis, keepdims=True)
    mad = np.nanmedian(np.abs(values - median), axis=axis)
    return _MAD_TO_SIGMA * mad


def robust_zscore(values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """``(values - median) / robust sigma``, the statistics taken over ``where`` (default all).

    Returns zeros when the robust sigma is 0 (constant data).
    """
    sample = values[where] if where is not None else values.ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return np.zeros_like(values, dtype=np.float64)
    center = float(np.median(sample))
    scale = float(robust_sigma(sample))
    if scale == 0.0:
        return np.zeros_like(values, dtype=np.float64)
    return (values - center) / scale


def pooled_sigma(scatter: np.ndarray, amplifiers: np.ndarray, dof: float,
                 where: np.ndarray | None = None) -> np.ndarray:
    """One scatter per amplifier (and per leading index) from per-pixel scatters.

    Parameters
    ----------
    scatter : ndarray
        ``(..., rows, nx)`` per-pixel standard deviations (NaN = unknown).
    amplifiers : ndarray
        ``(nx,)`` amplifier index of each column (0 ... namps - 1).
    dof : float
        Degrees of freedom of a typical pixel's scatter (for :func:`median_chi_factor`).
    where : ndarray, optional
        ``(rows, nx)`` pixels to pool (e.g. not reference pixels).

    Returns
    -------
    ndarray
        ``(..., namps)``: the median per amplifier divided by ``median_chi_factor(dof)``
        (NaN where an amplifier has no finite value).
    """
    namps = int(amplifiers.max()) + 1 if amplifiers.size else 1
    lead = scatter.shape[:-2]
    pooled = np.full((*lead, namps), np.nan)
    factor = median_chi_factor(dof)
    for amp in range(namps):
        columns = amplifiers == amp
        values = scatter[..., columns]
        if where is not None:
            values = np.where(where[:, columns], values, np.nan)
        values = values.reshape(*lead, -1)
        finite = np.isfinite(values).any(axis=-1)
        if finite.any():
            with np.errstate(all="ignore"):
                median = np.nanmedian(np.where(finite[..., None], values, 0.0), axis=-1)
            pooled[..., amp] = np.where(finite, median / factor, np.nan)
    return pooled


class ClippedStats(NamedTuple):
    """Per-pixel results of :func:`clipped_stats` (float64; NaN where undefined)."""

    mean: np.ndarray
    variance: np.ndarray
    count: np.ndarray
    keep: np.ndarray | None = None  # the samples used (only when asked for)


def clipped_stats(samples: np.ndarray, floor: np.ndarray | float, sigma: float = 4.0,
                  *, center: float | None = None, with_keep: bool = False) -> ClippedStats:
    """Sigma-clipped mean and variance per pixel, with pooled clipping thresholds.

    Parameters
    ----------
    samples : ndarray
        ``(n, ...)`` samples of each pixel along axis 0 (float32 is fine; NaN = missing).
    floor : ndarray or float
        The pooled scatter, broadcastable to ``samples.shape[1:]`` (see
        :func:`pooled_sigma`); 0 or NaN: the pixel's own scatter only.
    sigma : float
        Clip level; ``0`` or ``inf``: no clipping.
    center : float, optional
        A known centre of the samples (e.g. 0 for differences of two like exposures): the
        variance is then the mean square about it. Default: estimated per pixel.
    with_keep : bool
        Also return the boolean map of the samples used.

    The pixels are taken ``CHUNK`` at a time, so the working arrays stay small (and are
    reused rather than page-faulted in again): what this costs in memory beyond its input
    is the results (24 bytes a pixel) and ``floor`` as float32 (4).

    Returns
    -------
    ClippedStats
        ``mean``, ``variance`` (divided by :func:`truncation_variance_factor` of
        ``sigma``), ``count`` (samples kept) and ``keep`` (with ``with_keep``).
    """
    x = np.asarray(samples)
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    n, pixels = x.shape[0], x.shape[1:]
    flat = x.reshape(n, -1)
    size = flat.shape[1]
    floors = np.ascontiguousarray(np.broadcast_to(np.asarray(floor, np.float32), pixels)
                                  ).reshape(-1)
    mean, variance = np.empty(size), np.empty(size)
    count = np.empty(size, np.int64)
    keep = np.empty(flat.shape, bool) if with_keep else None
    dense = _Dense(n, min(CHUNK, size), x.dtype) if math.isfinite(sigma) and sigma > 0 \
        else None
    for start in range(0, size, CHUNK):
        part = slice(start, start + CHUNK)
        chunk = flat[:, part]
        total = chunk.sum(axis=0)
        if dense is not None and not np.isnan(total).any():
            result = dense.clip(chunk, total, floors[part], sigma, center, with_keep)
        else:
            result = _clipped(chunk, floors[part], sigma, center, with_keep)
        mean[part], variance[part], count[part] = result.mean, result.variance, result.count
        if keep is not None:
            keep[:, part] = result.keep
    return ClippedStats(mean.reshape(pixels), variance.reshape(pixels), count.reshape(pixels),
                        keep.reshape(x.shape) if keep is not None else None)


class _Dense:
    """:func:`clipped_stats` of chunks without missing samples, in reused buffers.

    The common case, in fewer passes than :func:`_clipped`: deviations and their squares
    are computed into buffers kept from chunk to chunk (no new memory to fault in), the
    clipped samples are zeroed by multiplying with the keep mask only when some were
    clipped. Measured on full-frame dark blocks: 6.1 ns a sample against 8.3.
    """

    def __init__(self, n: int, size: int, dtype: np.dtype) -> None:
        self.deviation = np.empty((n, size), dtype)
        self.squares = np.empty((n, size), dtype)
        self.keep = np.empty((n, size), bool)

    def clip(self, x: np.ndarray, total: np.ndarray, floor: np.ndarray, sigma: float,
             center: float | None, with_keep: bool) -> ClippedStats:
        n, m = x.shape
        deviation, squares, keep = (self.deviation[:, :m], self.squares[:, :m],
                                    self.keep[:, :m])
        ddof = 0 if center is not None else 1
        mid = (total / np.float32(n)) if center is None else np.full(m, center, x.dtype)
        np.subtract(x, mid.astype(x.dtype), out=deviation)
        np.multiply(deviation, deviation, out=squares)
        first, second = deviation.sum(axis=0), squares.sum(axis=0)
        own = np.maximum(second - (first * first / n if center is None else 0), 0) / (n - ddof)
        floor = np.nan_to_num(floor, nan=0.0)
        limit = np.float32(sigma * sigma) * np.maximum(floor * floor, own)
        np.less_equal(squares, limit.astype(x.dtype), out=keep)
        wide = own > (_WIDE * _WIDE) * floor * floor
        if wide.any():  # a cosmic ray or a noisy pixel: median/MAD thresholds
            keep[:, wide] = _median_keep(x[:, wide], floor[wide].astype(np.float64), sigma,
                                         center)
        kept = np.count_nonzero(keep, axis=0)
        if (kept < n).any():
            np.multiply(deviation, keep, out=deviation)
            np.multiply(squares, keep, out=squares)
            first, second = deviation.sum(axis=0), squares.sum(axis=0)
        first, second = first.astype(np.float64), second.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            shift = first * first / kept if center is None else 0.0
            variance = np.maximum(second - shift, 0.0) / (kept - ddof)
            mean = mid + first / kept
        variance = np.where(kept > ddof, variance, np.nan) / truncation_variance_factor(sigma)
        return ClippedStats(np.where(kept > 0, mean, np.nan), variance, kept,
                            keep.copy() if with_keep else None)


def _clipped(x: np.ndarray, floor: np.ndarray, sigma: float, center: float | None,
             with_keep: bool) -> ClippedStats:
    """:func:`clipped_stats` of ``(n, m)`` samples."""
    clip = math.isfinite(sigma) and sigma > 0
    ddof = 0 if center is not None else 1
    valid = ~np.isnan(x)
    gaps = not valid.all()
    count = np.count_nonzero(valid, axis=0) if gaps else np.full(x.shape[1:], x.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        # deviations from a first centre (small numbers: float32 sums stay exact enough)
        if center is not None:
            mid = np.full(x.shape[1:], float(center))
        elif gaps:
            mid = np.where(valid, x, 0).sum(axis=0) / count
        else:
            mid = x.sum(axis=0) / count
        deviation = x - mid.astype(x.dtype)
        if gaps:
            deviation[~valid] = 0
        squares = deviation * deviation
        scatter = np.sqrt(squares.sum(axis=0).astype(np.float64) / (count - ddof))
        if clip:
            floor = np.nan_to_num(floor, nan=0.0).astype(np.float64)
            limit = sigma * np.fmax(floor, scatter)
            limit[np.isnan(limit)] = np.inf  # too few samples to clip
            keep = squares <= (limit * limit).astype(x.dtype)
            if gaps:
                keep &= valid
            wide = (scatter > _WIDE * floor) & (count > 1)
            if wide.any():
                keep[:, wide] = _median_keep(x[:, wide], floor[wide], sigma, center)
            drop = ~keep
            deviation[drop] = 0
            squares[drop] = 0
            kept = np.count_nonzero(keep, axis=0)
        else:
            keep = valid
            kept = count
        first = deviation.sum(axis=0).astype(np.float64)
        second = squares.sum(axis=0).astype(np.float64)
        mean = mid + first / kept
        # about the clipped mean, or the mean square about a known centre
        shift = first * first / kept if center is None else 0.0
        variance = (second - shift) / (kept - ddof)
    variance = np.where(kept > ddof, np.maximum(variance, 0.0), np.nan)
    if clip:
        variance /= truncation_variance_factor(sigma)
    return ClippedStats(np.where(kept > 0, mean, np.nan), variance, kept,
                        keep if with_keep else None)


def _median_keep(values: np.ndarray, floor: np.ndarray, sigma: float,
                 center: float | None) -> np.ndarray:
    """Keep mask of ``(n, m)`` samples clipped about their median at sigma x max(floor, MAD)."""
    with np.errstate(invalid="ignore"):
        mid = np.nanmedian(values, axis=0) if center is None else np.full(values.shape[1],
                                                                           float(center))
        deviation = np.abs(values - mid)
        scale = _MAD_TO_SIGMA * np.nanmedian(deviation, axis=0)
        return deviation <= sigma * np.fmax(floor, scale)

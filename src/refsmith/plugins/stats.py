"""Robust statistics shared by the built-in plug-ins and the combiners.

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

from refsmith.plugins.kernels import MAD_TO_SIGMA, clip_columns

__all__ = ["ClippedStats", "clipped_stats", "median_chi_factor", "pooled_sigma",
           "robust_sigma", "robust_zscore", "truncation_variance_factor"]



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
    return MAD_TO_SIGMA * mad


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

    The work is one compiled loop over the pixels (:func:`.kernels.clip_columns`): what
    this costs in memory beyond its input is the results (24 bytes a pixel) and ``floor``
    as float32 (4).

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
    floors = np.broadcast_to(np.asarray(floor, np.float32), pixels).reshape(-1)
    mean, variance, count, keep = clip_columns(x.reshape(n, -1), floors, sigma, center,
                                               with_keep)
    if math.isfinite(sigma) and sigma > 0:
        variance /= truncation_variance_factor(sigma)
    return ClippedStats(mean.reshape(pixels), variance.reshape(pixels), count.reshape(pixels),
                        keep.reshape(x.shape) if keep is not None else None)

"""Compiled per-pixel loops of the built-ins' statistics (numba).

The clipped statistics of :mod:`.stats` and the medians over a few samples per pixel
were numpy passes over whole blocks: ten or more passes, each allocating a block-sized
temporary. On full-frame blocks that cost 6-10 ns a sample (the dark of 8 full-frame
20-group ramps: 6.2 s of its 14.6 s), and ``np.median`` along a short axis 0 (eight
slopes a pixel) 1 s a frame. These loops read each sample from cache a few times, keep
their sums in float64, and allocate nothing per block.

Each function is compiled once per machine (``cache=True``: the machine code is kept in
``__pycache__``, or numba's user cache when that is not writable) for the argument types
the callers pass, which :func:`warm` gives them; worker processes call :func:`warm` when
they set themselves up, so no job waits for a compilation.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["MAD_TO_SIGMA", "clip_columns", "median_columns", "warm"]

MAD_TO_SIGMA = 1.482602218505602
WIDE = 2.0  # own scatter above this many floors: median/MAD thresholds
_TILE = 1024  # pixels per pass: the tile's samples stay in the L2 cache
_SORT_SMALL = 32  # insertion sort up to this many values


@njit(cache=True, nogil=True)
def _median(values: np.ndarray, k: int) -> float:
    """Median of ``values[:k]``, reordering them (NaN when k == 0): a few sorted in place,
    more selected (numba's ``np.median``, a partition: a sort made 1,024-pixel boxes'
    medians 1.7x slower than ``np.nanmedian``)."""
    if k == 0:
        return np.nan
    if k > _SORT_SMALL:
        return np.median(values[:k])
    for a in range(1, k):
        v = values[a]
        b = a - 1
        while b >= 0 and values[b] > v:
            values[b + 1] = values[b]
            b -= 1
        values[b + 1] = v
    half = k // 2
    if k % 2:
        return values[half]
    return 0.5 * (values[half - 1] + values[half])


@njit(cache=True, nogil=True)
def _clip_columns(x, floor, sigma, center, has_center, mean, variance, count, keep):
    n, m = x.shape
    clip = sigma > 0.0 and sigma < np.inf
    with_keep = keep.shape[0] > 0
    ddof = 0 if has_center else 1
    s1 = np.empty(_TILE)
    c = np.empty(_TILE)
    f1 = np.empty(_TILE)
    f2 = np.empty(_TILE)
    k1 = np.empty(_TILE)
    k2 = np.empty(_TILE)
    kc = np.empty(_TILE)
    mid = np.empty(_TILE)
    limit = np.empty(_TILE)
    flo = np.empty(_TILE)  # the floor, NaN as 0
    wide = np.zeros(_TILE, np.bool_)
    values = np.empty(n)
    for t0 in range(0, m, _TILE):
        w = min(_TILE, m - t0)
        s1[:w] = 0.0
        c[:w] = 0.0
        f1[:w] = 0.0
        f2[:w] = 0.0
        for i in range(n):
            row = x[i, t0:t0 + w]  # 1-D views: these loops vectorise, 2-D indexing not
            for j in range(w):
                v = row[j]
                ok = v == v
                s1[j] += v if ok else 0.0
                c[j] += 1.0 if ok else 0.0
        for j in range(w):
            if has_center:
                mid[j] = center
            else:
                mid[j] = s1[j] / c[j] if c[j] > 0 else 0.0
        for i in range(n):
            row = x[i, t0:t0 + w]
            for j in range(w):
                v = row[j]
                d = v - mid[j] if v == v else 0.0
                f1[j] += d
                f2[j] += d * d
        for j in range(w):
            cj = c[j]
            own = np.nan
            if cj > ddof:
                shift = 0.0 if has_center else f1[j] * f1[j] / cj
                own = max(f2[j] - shift, 0.0) / (cj - ddof)
            fl = floor[t0 + j]
            fl = 0.0 if fl != fl else fl
            flo[j] = fl
            wide[j] = clip and cj > 1 and own > WIDE * WIDE * fl * fl
            if not clip or own != own:
                limit[j] = np.inf
            else:
                limit[j] = sigma * sigma * max(fl * fl, own)
        if not clip and not with_keep:
            k1[:w] = f1[:w]
            k2[:w] = f2[:w]
            kc[:w] = c[:w]
        else:
            k1[:w] = 0.0
            k2[:w] = 0.0
            kc[:w] = 0.0
            for i in range(n):
                row = x[i, t0:t0 + w]
                for j in range(w):
                    d = row[j] - mid[j]
                    dd = d * d
                    ok = dd <= limit[j]  # False for NaN
                    k1[j] += d if ok else 0.0
                    k2[j] += dd if ok else 0.0
                    kc[j] += 1.0 if ok else 0.0
                if with_keep:
                    kept_row = keep[i, t0:t0 + w]
                    for j in range(w):
                        d = row[j] - mid[j]
                        kept_row[j] = d * d <= limit[j]
            for j in range(w):
                if not wide[j]:
                    continue
                # a cosmic ray or a noisy pixel: thresholds about the median, MAD-scaled
                k = 0
                for i in range(n):
                    v = x[i, t0 + j]
                    if v == v:
                        values[k] = v
                        k += 1
                centre = center if has_center else _median(values, k)
                for a in range(k):
                    values[a] = abs(values[a] - centre)
                scale = MAD_TO_SIGMA * _median(values, k)
                bound = sigma * max(flo[j], scale)
                k1[j] = 0.0
                k2[j] = 0.0
                kc[j] = 0.0
                for i in range(n):
                    v = x[i, t0 + j]
                    ok = v == v and abs(v - centre) <= bound
                    if ok:
                        d = v - mid[j]
                        k1[j] += d
                        k2[j] += d * d
                        kc[j] += 1.0
                    if with_keep:
                        keep[i, t0 + j] = ok
        for j in range(w):
            kept = kc[j]
            count[t0 + j] = int(kept)
            mean[t0 + j] = mid[j] + k1[j] / kept if kept > 0 else np.nan
            if kept > ddof:
                shift = 0.0 if has_center else k1[j] * k1[j] / kept
                variance[t0 + j] = max(k2[j] - shift, 0.0) / (kept - ddof)
            else:
                variance[t0 + j] = np.nan


def clip_columns(x: np.ndarray, floor: np.ndarray, sigma: float, center: float | None,
                 with_keep: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Clipped mean, variance and count of each column of ``x`` ``(n, m)`` (NaN = missing).

    Per column: the centre is ``center`` or the mean of its samples; the column's own
    variance ``s2`` about it; samples with ``(x - centre)**2 > sigma**2 max(floor**2, s2)``
    are left out, except in *wide* columns (``s2 > 4 floor**2``: a cosmic ray, a noisy
    pixel), which keep the samples within ``sigma max(floor, 1.4826 MAD)`` of their
    median. ``sigma`` 0 or inf: no clipping. Returns float64 ``mean``, ``variance``
    (about the kept mean, or the mean square about ``center``; not corrected for the
    truncation), int64 ``count`` and, with ``with_keep``, the boolean map of samples kept.
    """
    x = np.require(x, np.float64 if np.asarray(x).dtype == np.float64 else np.float32,
                   ["C", "W"])
    n, m = x.shape
    # always contiguous and writable: numba compiles a read-only array as another type
    # (a broadcast view of a 1-D floor is read-only), which :func:`warm` would not cover
    floor = np.require(np.broadcast_to(np.asarray(floor, np.float32), (m,)), np.float32,
                       ["C", "W"])
    mean, variance = np.empty(m), np.empty(m)
    count = np.empty(m, np.int64)
    keep = np.empty((n, m) if with_keep else (0, 0), np.bool_)
    sigma = float(sigma) if math.isfinite(sigma) and sigma > 0 else 0.0
    _clip_columns(x, floor, sigma, 0.0 if center is None else float(center),
                  center is not None, mean, variance, count, keep)
    return mean, variance, count, keep if with_keep else None


@njit(cache=True, nogil=True)
def _median_columns(x, out):
    n, m = x.shape
    values = np.empty(n)
    for j in range(m):
        k = 0
        for i in range(n):
            v = x[i, j]
            if v == v:
                values[k] = v
                k += 1
        out[j] = _median(values, k)


def median_columns(x: np.ndarray) -> np.ndarray:
    """NaN-ignoring median of each column of ``x`` ``(n, ...)`` over axis 0, float64
    (NaN where a column has no finite value): ``np.nanmedian(x, axis=0)``, without its
    partition along a short strided axis (1 s for eight slopes of a full frame)."""
    array = np.asarray(x)
    dtype = np.float32 if array.dtype == np.float32 else np.float64
    flat = array.reshape(array.shape[0], -1)
    if flat.dtype != dtype or not flat.flags.f_contiguous:
        flat = np.ascontiguousarray(flat, dtype)  # column-major (gain's boxes) is read as is
    out = np.empty(flat.shape[1])
    _median_columns(flat, out)
    return out.reshape(array.shape[1:])


def warm() -> None:
    """Compile (or load from the cache) every kernel for the types the callers pass."""
    for dtype in (np.float32, np.float64):
        median_columns(np.zeros((3, 2), dtype))
        median_columns(np.zeros((2, 3), dtype).T)  # columns contiguous
        for center in (None, 0.0):
            for with_keep in (False, True):
                clip_columns(np.zeros((3, 2), dtype), np.zeros(2, np.float32), 4.0, center,
                             with_keep)

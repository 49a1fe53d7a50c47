"""The compiled loops of plugins/kernels.py against plain per-column Python."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refsmith.plugins.kernels import MAD_TO_SIGMA, clip_columns, median_columns


def reference_column(values: np.ndarray, floor: float, sigma: float,
                     center: float | None) -> tuple[float, float, int, np.ndarray]:
    """What clip_columns documents, for one column, in float64 Python."""
    valid = ~np.isnan(values)
    v = values.astype(np.float64)
    ddof = 0 if center is not None else 1
    count = int(valid.sum())
    mid = center if center is not None else (v[valid].mean() if count else 0.0)
    own = float(np.sum((v[valid] - mid) ** 2) / (count - ddof)) if count > ddof else math.nan
    floor = 0.0 if math.isnan(floor) else floor
    keep = valid.copy()
    if sigma > 0 and math.isfinite(sigma) and not math.isnan(own):
        if count > 1 and own > 4.0 * floor * floor:
            centre = center if center is not None else float(np.median(v[valid]))
            scale = MAD_TO_SIGMA * float(np.median(np.abs(v[valid] - centre)))
            keep = valid & (np.abs(v - centre) <= sigma * max(floor, scale))
        else:
            keep = valid & ((v - mid) ** 2 <= sigma * sigma * max(floor * floor, own))
    kept = int(keep.sum())
    d = v[keep] - mid
    mean = mid + d.sum() / kept if kept else math.nan
    shift = 0.0 if center is not None else (d.sum() ** 2 / kept if kept else 0.0)
    variance = max(float(np.sum(d * d)) - shift, 0.0) / (kept - ddof) if kept > ddof \
        else math.nan
    return mean, variance, kept, keep


@pytest.mark.parametrize("center", [None, 0.0])
@pytest.mark.parametrize("sigma", [0.0, 3.0, 4.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_columns_matches_the_documented_rule(center, sigma, dtype):
    rng = np.random.default_rng(5)
    n, m = 9, 2500  # more than one tile of 1024 pixels, and a partial one
    x = rng.normal(0.0 if center is not None else 50.0, 2.0, (n, m))
    x[:, ::7] *= 4.0  # noisy pixels: the median/MAD path
    x[rng.random((n, m)) < 0.01] += 60.0  # outliers
    x[rng.random((n, m)) < 0.05] = np.nan  # gaps
    x[:, 10] = np.nan  # nothing
    x[1:, 11] = np.nan  # one sample
    x = x.astype(dtype)
    floor = np.full(m, 2.0, np.float32)
    floor[::13] = np.nan
    mean, variance, count, keep = clip_columns(x, floor, sigma, center, with_keep=True)
    for j in range(m):
        want = reference_column(x[:, j], float(floor[j]), sigma, center)
        assert count[j] == want[2], j
        assert np.array_equal(keep[:, j], want[3]), j
        np.testing.assert_allclose([mean[j], variance[j]], want[:2], rtol=1e-5, atol=1e-6,
                                   equal_nan=True, err_msg=f"column {j}")
    # the same results without the keep map
    again = clip_columns(x, floor, sigma, center)
    np.testing.assert_array_equal(again[2], count)
    np.testing.assert_allclose(again[1], variance, rtol=1e-12, equal_nan=True)


def test_median_columns_is_nanmedian_over_axis_0():
    rng = np.random.default_rng(2)
    for n in (1, 2, 7, 8, 40, 41):  # insertion sort up to 32 values, a selection above
        x = rng.normal(size=(n, 3, 50)).astype(np.float32)
        x[rng.random(x.shape) < 0.2] = np.nan
        x[:, 0, 0] = np.nan
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            want = np.nanmedian(x.astype(np.float64), axis=0)
        got = median_columns(x)
        assert got.shape == (3, 50)
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
        columns = np.asfortranarray(x.reshape(n, -1))  # column-major: read in place
        np.testing.assert_allclose(median_columns(columns), want.ravel(), rtol=1e-12,
                                   equal_nan=True)


def test_warm_compiles_every_signature_the_callers_use():
    """A call with a type warm() did not cover compiles inside a job (8 s and ~0.5 GiB
    held, seen in CI with a read-only floor)."""
    from refsmith.plugins import kernels
    from refsmith.plugins.builtin.gain import box_median
    from refsmith.plugins.stats import clipped_stats

    kernels.warm()
    compiled = {f: len(f.signatures) for f in (kernels._clip_columns, kernels._median_columns)}
    samples = np.ones((4, 3, 8, 5), np.float32)
    floor = np.full((3, 1, 5), 2.0, np.float32)  # broadcast over rows
    clipped_stats(samples, floor, 4.0)
    clipped_stats(samples, 0.0, 0.0, center=0.0)
    clipped_stats(samples.reshape(4, -1), np.ones(120, np.float32), 4.0)  # a full-size floor
    clipped_stats(samples.astype(np.float64), 1.0, 3.0, with_keep=True)
    median_columns(samples)
    median_columns(samples.astype(np.float64))
    box_median(np.ones((2, 3, 64)))  # gain's boxes: a column-major view
    assert {f: len(f.signatures) for f in compiled} == compiled

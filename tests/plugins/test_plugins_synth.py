"""Injected truths of refsmith.synthetic.ramps and the robust statistics the plug-ins use."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from refsmith.plugins.builtin._common import scatter
from refsmith.plugins.stats import (
    clipped_stats,
    median_chi_factor,
    pooled_sigma,
    robust_zscore,
    truncation_variance_factor,
)
from refsmith.synthetic.ramps import frame_time, inject_defects, write_raw_exposure


def test_defects_are_disjoint_science_pixels():
    defects = inject_defects((64, 64), hot=5, dead=6, low_qe=7, noisy=8, seed=2)
    maps = [defects.hot, defects.dead, defects.low_qe, defects.noisy]
    assert [m.sum() for m in maps] == [5, 6, 7, 8]
    assert np.sum(maps, axis=0).max() == 1
    assert not defects.any[:4].any() and not defects.any[:, :4].any()  # reference pixels
    again = inject_defects((64, 64), hot=5, dead=6, low_qe=7, noisy=8, seed=2)
    np.testing.assert_array_equal(again.any, defects.any)


def test_raw_exposure_carries_the_defects_and_pixel_maps(tmp_path):
    defects = inject_defects((32, 32), seed=1, hot_rate=500.0)
    gain = np.full((32, 32), 2.0)
    path = write_raw_exposure(tmp_path / "f.fits", shape=(1, 4, 32, 32), flux=2000.0,
                              read_noise=np.full((32, 32), 1.0), gain=gain, defects=defects,
                              subarray="SUB32")
    data = fits.getdata(path, "SCI").astype(float)
    rise = (data[0, -1] - data[0, 0]) / (3 * frame_time("NIRCAM", 32, 32))
    normal = ~defects.any
    normal[:4] = normal[:, :4] = False
    assert np.all(rise[defects.dead] < 200)  # no charge at all
    assert np.median(rise[defects.low_qe]) == pytest.approx(0.3 * np.median(rise[normal]),
                                                            rel=0.15)
    assert np.median(rise[defects.hot]) > np.median(rise[normal]) + 250


def test_scalar_arguments_keep_the_old_output(tmp_path):
    a = write_raw_exposure(tmp_path / "a.fits", shape=(1, 3, 16, 16), seed=4, read_noise=7.0)
    b = write_raw_exposure(tmp_path / "b.fits", shape=(1, 3, 16, 16), seed=4,
                           read_noise=np.full((16, 16), 7.0))
    np.testing.assert_array_equal(fits.getdata(a, "SCI"), fits.getdata(b, "SCI"))


@pytest.mark.parametrize("samples", [5, 10, 36])
def test_clipped_variance_is_unbiased_at_few_samples(samples):
    """Pooled thresholds: the variance of normal pixels within 1 % (per-pixel: -21 % at 5)."""
    rng = np.random.default_rng(samples)
    sigma = rng.uniform(0.7, 1.3, 50_000)  # the noise differs from pixel to pixel
    values = (rng.normal(size=(samples, sigma.size)) * sigma + 100).astype(np.float32)
    noisy = rng.random(sigma.size) < 0.01
    values[:, noisy] = (values[:, noisy] - 100) * 5 + 100
    values[rng.random(values.shape) < 0.002] += 100.0  # cosmic rays
    values[rng.random(values.shape) < 0.01] = np.nan  # DO_NOT_USE
    spread, _ = scatter(values)
    floor = pooled_sigma(spread[None], np.zeros(sigma.size, int), samples - 1)[0]
    result = clipped_stats(values, floor, sigma=4.0)
    assert np.nanmean(result.variance[~noisy] / sigma[~noisy] ** 2) == pytest.approx(1, abs=0.01)
    assert np.nanmean(result.mean) == pytest.approx(100, abs=0.01)
    # noisy pixels keep their own threshold: their noise is not clipped away (the pooled
    # threshold alone would keep 8 % of their variance)
    assert np.nanmean(result.variance[noisy] / (25 * sigma[noisy] ** 2)) > 0.85
    known = clipped_stats(values - 100, floor, sigma=4.0, center=0.0)
    assert np.nanmean(known.variance[~noisy] / sigma[~noisy] ** 2) == pytest.approx(1, abs=0.01)


def test_clipping_removes_outliers_and_corrects_the_truncation():
    assert truncation_variance_factor(3.0) == pytest.approx(0.97330, abs=1e-4)
    assert truncation_variance_factor(0.0) == 1.0
    values = np.random.default_rng(3).normal(10.0, 2.0, size=(400, 50))
    values[0] = 1000.0  # one outlier per pixel is clipped
    result = clipped_stats(values, 2.0, sigma=3.0)
    assert np.all(result.count < 400) and np.all(result.count > 390)
    assert np.mean(result.mean) == pytest.approx(10.0, abs=0.05)
    assert np.mean(np.sqrt(result.variance)) == pytest.approx(2.0, rel=0.01)
    # sqrt(median of chi2(4) / 4) = 0.9161 (scipy); the Wilson-Hilferty form is within 0.3 %
    assert median_chi_factor(4) == pytest.approx(0.9161, abs=3e-3)


def test_robust_zscore_ignores_outliers_and_constant_data():
    values = np.concatenate([np.random.default_rng(0).normal(0, 1, 1000), [50.0]])
    z = robust_zscore(values)
    assert z[-1] > 40 and np.abs(np.median(z[:-1])) < 0.1
    assert np.all(robust_zscore(np.ones(10)) == 0)

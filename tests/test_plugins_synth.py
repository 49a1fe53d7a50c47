"""Injected truths of refsmith.synthpipe and the robust statistics the plug-ins use."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from refsmith.plugins.stats import clipped_mean, robust_zscore, truncation_variance_factor
from refsmith.synthpipe import frame_time, inject_defects, write_raw_exposure


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


def test_clipped_std_is_unbiased_for_normal_data():
    assert truncation_variance_factor(3.0) == pytest.approx(0.97330, abs=1e-4)
    assert truncation_variance_factor(0.0) == 1.0
    samples = np.random.default_rng(3).normal(10.0, 2.0, size=(400, 50))
    mean, std, count = clipped_mean(samples, axis=0, sigma=3.0)
    assert np.mean(std) == pytest.approx(2.0, rel=0.01)
    assert np.mean(mean) == pytest.approx(10.0, abs=0.02)
    samples[0] = 1000.0  # one outlier per column is clipped
    mean, _, count = clipped_mean(samples, axis=0, sigma=3.0)
    assert np.all(count < 400) and np.mean(mean) == pytest.approx(10.0, abs=0.05)


def test_robust_zscore_ignores_outliers_and_constant_data():
    values = np.concatenate([np.random.default_rng(0).normal(0, 1, 1000), [50.0]])
    z = robust_zscore(values)
    assert z[-1] > 40 and np.abs(np.median(z[:-1])) < 0.1
    assert np.all(robust_zscore(np.ones(10)) == 0)

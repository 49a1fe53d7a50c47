"""Comparing reference files (``refsmith.report.compare``, ``refsmith compare``) and the
per-amplifier and reference-pixel geometry."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from refsmith.cli import main
from refsmith.errors import RefsmithError
from refsmith.report.compare import compare_files
from refsmith.report.geometry import amplifiers, reference_pixels
from refsmith.report.reffiles import describe_reffile


def write_image(path, data, **header):
    primary = fits.PrimaryHDU()
    primary.header.update({"REFTYPE": "READNOISE", "DETECTOR": "NRCA1", **header})
    fits.HDUList([primary, fits.ImageHDU(np.asarray(data, np.float32), name="SCI")]
                 ).writeto(path)
    return path


def write_mask(path, dq, **header):
    primary = fits.PrimaryHDU()
    primary.header.update({"REFTYPE": "MASK", "DETECTOR": "NRCA1", **header})
    names = fits.BinTableHDU.from_columns(
        [fits.Column("VALUE", "J", array=[1, 1024]),
         fits.Column("NAME", "20A", array=["DO_NOT_USE", "DEAD"])], name="DQ_DEF")
    fits.HDUList([primary, fits.ImageHDU(np.asarray(dq, np.uint32), name="DQ"), names]
                 ).writeto(path)
    return path


@pytest.fixture
def noise():
    return np.random.default_rng(5).normal(10.0, 1.0, (64, 64))


def test_identical_consistent_and_changed_images(tmp_path, noise):
    base = write_image(tmp_path / "base.fits", noise)
    same = write_image(tmp_path / "same.fits", noise)
    assert compare_files(same, base).verdict == "identical"
    jitter = noise + np.random.default_rng(6).normal(0, 0.1, noise.shape)
    result = compare_files(write_image(tmp_path / "jitter.fits", jitter), base)
    assert result.verdict == "consistent"
    assert result.sigma == pytest.approx(0.1, rel=0.1)
    assert result.changed < 5
    changed = jitter.copy()
    changed[:8, :16] += 5.0  # 128 pixels, 50 sigma
    result = compare_files(write_image(tmp_path / "changed.fits", changed), base, nsigma=5)
    assert result.verdict == "changed" and result.changed == pytest.approx(128, abs=3)
    assert result.fraction == pytest.approx(128 / 4096, abs=0.001)
    scaled = compare_files(write_image(tmp_path / "scaled.fits", noise * 1.1), base)
    assert scaled.verdict == "changed" and scaled.median_ratio == pytest.approx(1.1, rel=1e-4)
    assert result.threshold == pytest.approx(5 * result.sigma)
    assert f"|difference| > {result.threshold:.4g})" in result.line


def test_a_smooth_map_has_the_floor_as_its_threshold(tmp_path):
    """Box-wise maps (gain) have no pixel noise: sigma 0, the floor decides, and the line
    says so."""
    base = np.full((64, 64), 2.0)
    new = base.copy()
    new[:, :32] *= 1.1  # half the map 10 % up
    new[:, 32:] *= 1.0005  # the other half within the floor (0.1 % of the median)
    result = compare_files(write_image(tmp_path / "new.fits", new),
                           write_image(tmp_path / "base.fits", base))
    assert result.sigma == 0 and result.threshold == pytest.approx(0.002)
    assert result.changed == 64 * 32 and result.verdict == "changed"
    assert "|difference| > 0.002, the floor of 0.1% of the baseline median)" in result.line


def test_a_subarray_is_compared_with_its_cutout_of_a_full_frame(tmp_path):
    full = np.random.default_rng(1).normal(5, 1, (256, 256))
    base = write_image(tmp_path / "full.fits", full, SUBARRAY="FULL")
    cut = full[100:164, 40:104]
    new = write_image(tmp_path / "sub.fits", cut, SUBARRAY="SUB64", SUBSTRT1=41, SUBSTRT2=101)
    assert compare_files(new, base).verdict == "identical"
    shifted = write_image(tmp_path / "shifted.fits", cut, SUBSTRT1=42, SUBSTRT2=101)
    assert compare_files(shifted, base).verdict != "identical"  # another cut-out
    outside = write_image(tmp_path / "outside.fits", cut, SUBSTRT1=250, SUBSTRT2=1)
    assert compare_files(outside, base).verdict == "incomparable"


def test_masks_compare_by_flagged_pixels(tmp_path):
    dq = np.zeros((64, 64))
    dq[5, 5:10] = 1025
    base = write_mask(tmp_path / "base.fits", dq)
    dq2 = dq.copy()
    dq2[5, 5] = 0
    dq2[40, 40:43] = 1
    result = compare_files(write_mask(tmp_path / "new.fits", dq2), base)
    assert (result.newly_flagged, result.unflagged, result.changed) == (3, 1, 4)
    assert result.verdict == "consistent"
    assert "3 pixels newly flagged, 1 no longer flagged" in result.line


def test_refsmith_compare_text_json_and_exit_codes(tmp_path, noise, capsys):
    base = write_image(tmp_path / "base.fits", noise)
    changed = noise.copy()
    changed[:32] *= 2
    new = write_image(tmp_path / "new.fits", changed)
    assert main(["compare", str(base), str(base)]) == 0
    assert "verdict: identical" in capsys.readouterr().out
    assert main(["compare", str(new), str(base), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "changed" and data["changed"] == pytest.approx(2048, abs=40)
    assert data["baseline"] == str(base)
    mask = write_mask(tmp_path / "mask.fits", np.zeros((64, 64)))
    assert main(["compare", str(new), str(mask)]) == 2
    err = capsys.readouterr().err
    assert "cannot compare" in err and "mask.fits" in err
    assert main(["compare", str(tmp_path / "none.fits"), str(base), "--format", "json"]) == 2
    error = json.loads(capsys.readouterr().err)
    assert error == {"error": f"{tmp_path / 'none.fits'}: no such file", "exit_code": 2}
    (tmp_path / "text.fits").write_text("no FITS")
    process = subprocess.run([sys.executable, "-m", "refsmith.cli", "compare",
                              str(tmp_path / "text.fits"), str(base)],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert "Traceback" not in process.stderr and "text.fits" in process.stderr
    assert len(process.stderr.strip().splitlines()) <= 2  # one message (rich may wrap it)


def test_compare_files_names_the_unreadable_file(tmp_path, noise):
    base = write_image(tmp_path / "base.fits", noise)
    (tmp_path / "bad.fits").write_bytes(b"x" * 100)
    with pytest.raises(RefsmithError, match=r"bad\.fits: cannot be read"):
        compare_files(base, tmp_path / "bad.fits")


def test_reference_pixels_and_amplifiers():
    assert reference_pixels({"SUBSTRT1": 1, "SUBSTRT2": 1}, (64, 64)).sum() == 64 * 4 + 60 * 4
    assert reference_pixels({"SUBSTRT1": 101, "SUBSTRT2": 101}, (64, 64)).sum() == 0
    assert reference_pixels({}, (64, 64)) is None
    full = reference_pixels({}, (2048, 2048))
    assert full.sum() == 2048 ** 2 - 2040 ** 2 and not full[4:-4, 4:-4].any()
    amps = amplifiers({}, (2048, 2048))
    assert [a.name for a in amps] == ["1", "2", "3", "4"]
    assert [int(np.flatnonzero(a.columns)[0]) for a in amps] == [0, 512, 1024, 1536]
    assert [a.name for a in amplifiers({"NOUTPUTS": 1}, (2048, 2048))] == ["all"]
    # a stripe subarray read through 4 outputs, starting in amplifier 2
    stripe = amplifiers({"NOUTPUTS": 4, "SUBSTRT1": 1001, "SUBSTRT2": 1}, (64, 1048))
    assert [(a.name, int(a.columns.sum())) for a in stripe] == [
        ("2", 24), ("3", 512), ("4", 512)]
    miri = amplifiers({"INSTRUME": "MIRI"}, (1024, 1032))
    assert len(miri) == 4 and miri[1].columns[1] and not miri[1].columns[2]


def test_full_frame_card_has_statistics_per_amplifier(tmp_path):
    levels = (5.0, 6.0, 7.0, 8.0)
    data = np.repeat(np.array(levels, np.float32), 512)[None, :].repeat(2048, axis=0)
    data += np.random.default_rng(2).normal(0, 0.5, data.shape).astype(np.float32)
    data[:4] = 100.0  # reference rows: left out of the statistics
    path = write_image(tmp_path / "final" / "readnoise" / "rn.fits" if (
        tmp_path / "final" / "readnoise").mkdir(parents=True) is None else None, data,
        SUBARRAY="FULL")
    view = describe_reffile(path, {}, picture=False)
    assert [row[0] for row in view.amps] == ["1", "2", "3", "4"]
    assert [row[1] for row in view.amps] == ["0-511", "512-1023", "1024-1535", "1536-2047"]
    for row, level in zip(view.amps, levels, strict=True):
        assert float(row[2]) == pytest.approx(level, abs=0.01)
        assert float(row[3]) == pytest.approx(0.5, rel=0.05)
    assert view.stats["median (science pixels)"] == f"{np.median(data[4:-4, 4:-4]):.4g}"

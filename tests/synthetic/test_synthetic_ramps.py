"""Synthetic raw ramps and reference files for the real pipeline (no pipeline run here)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time

from refsmith.synthetic.ramps import frame_time, group_times, write_raw_exposure
from refsmith.synthetic.references import (
    REFERENCE_TYPES,
    reference_overrides,
    write_reference_files,
)

SHAPE = (2, 5, 64, 64)
RAW_KEYWORDS = (
    "INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT", "SUBARRAY", "NINTS", "NGROUPS", "NFRAMES",
    "GROUPGAP", "FRMDIVSR", "TFRAME", "TGROUP", "SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2",
    "FASTAXIS", "SLOWAXIS", "EXPSTART", "EXPMID", "EXPEND", "DATE-OBS", "TIME-OBS",
    "DATE-BEG", "DATE-END",
)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return write_raw_exposure(
        tmp_path_factory.mktemp("raw") / "jw_uncal.fits", shape=SHAPE, mjd=60123.25, flux=100.0
    )


def test_raw_exposure_has_the_keywords_the_pipeline_needs(raw):
    header = fits.getheader(raw, 0)
    missing = [k for k in RAW_KEYWORDS if k not in header]
    assert missing == []
    assert (header["INSTRUME"], header["DETECTOR"], header["SUBARRAY"]) == (
        "NIRCAM", "NRCA1", "SUB64P")
    assert (header["NINTS"], header["NGROUPS"], header["NFRAMES"], header["GROUPGAP"]) == (
        2, 5, 1, 0)
    assert (header["SUBSIZE1"], header["SUBSIZE2"], header["SUBSTRT1"]) == (64, 64, 1)
    assert header["TGROUP"] == pytest.approx(header["TFRAME"])
    assert header["EXPSTART"] == 60123.25
    assert header["EXPSTART"] < header["EXPMID"] < header["EXPEND"]
    assert header["DATE-BEG"] == Time(60123.25, format="mjd").isot
    assert header["DATE-OBS"] + "T" + header["TIME-OBS"] == header["DATE-BEG"]
    assert "TIME-END" not in header  # as in flight data
    with fits.open(raw) as hdus:
        assert "ASDF" in hdus  # like real _uncal files: opens by name in the pipeline
        data = hdus["SCI"].data
    assert data.shape == SHAPE and data.dtype == np.uint16


def test_raw_ramps_follow_the_requested_signal(raw):
    data = fits.getdata(raw, "SCI").astype(float)
    tframe = frame_time("NIRCAM", 64, 64)
    rise = (data[:, -1] - data[:, 0]).mean(axis=0) / (4 * tframe)
    assert abs(np.median(rise[4:, 4:]) - 100.05) < 15  # flux + dark, DN/s
    assert abs(np.median(rise[:4, :])) < 15  # reference rows carry no signal
    assert abs(data[:, 0].mean() - 12000) < 10


def test_raw_is_reproducible_and_seeded(tmp_path):
    a = write_raw_exposure(tmp_path / "a.fits", shape=(1, 3, 16, 16), seed=5)
    b = write_raw_exposure(tmp_path / "b.fits", shape=(1, 3, 16, 16), seed=5)
    c = write_raw_exposure(tmp_path / "c.fits", shape=(1, 3, 16, 16), seed=6)
    np.testing.assert_array_equal(fits.getdata(a, "SCI"), fits.getdata(b, "SCI"))
    assert not np.array_equal(fits.getdata(a, "SCI"), fits.getdata(c, "SCI"))


def test_readout_pattern_sets_nframes_and_groupgap(tmp_path):
    path = write_raw_exposure(tmp_path / "b.fits", readpatt="BRIGHT2", shape=(1, 3, 16, 16))
    header = fits.getheader(path, 0)
    assert (header["NFRAMES"], header["GROUPGAP"], header["FRMDIVSR"]) == (2, 0, 2)
    assert header["TGROUP"] == pytest.approx(2 * header["TFRAME"])
    with pytest.raises(ValueError, match="nframes= and groupgap="):
        write_raw_exposure(tmp_path / "x.fits", readpatt="WEIRD", shape=(1, 3, 8, 8))


def test_reference_files_match_the_exposure(tmp_path):
    refs = write_reference_files(tmp_path, shape=SHAPE)
    assert set(refs) == set(REFERENCE_TYPES)
    for reftype, path in refs.items():
        header = fits.getheader(path, 0)
        assert header["REFTYPE"] == reftype.upper()
        for keyword in ("AUTHOR", "PEDIGREE", "DESCRIP", "USEAFTER"):
            assert header[keyword], (reftype, keyword)
        assert (header["INSTRUME"], header["DETECTOR"]) == ("NIRCAM", "NRCA1")
        if reftype != "ipc":
            assert (header["SUBARRAY"], header["SUBSTRT1"], header["SUBSIZE1"],
                    header["SUBSIZE2"]) == ("SUB64P", 1, 64, 64)
    dark = fits.getheader(refs["dark"], 0)
    assert (dark["NGROUPS"], dark["NFRAMES"], dark["GROUPGAP"]) == (5, 1, 0)
    assert fits.getdata(refs["dark"], "SCI").shape == (5, 64, 64)


def test_mask_flags_only_reference_pixels(tmp_path):
    mask = fits.getdata(write_reference_files(tmp_path, reftypes=("mask",))["mask"], "DQ")
    expected = np.zeros((64, 64), bool)
    expected[:4, :] = expected[:, :4] = True  # SUBSTRT (1, 1): bottom rows, left columns
    np.testing.assert_array_equal(mask == 2**31, expected)
    assert set(np.unique(mask)) == {0, 2**31}


def test_superbias_is_the_bias_of_the_exposures(raw, tmp_path):
    superbias = fits.getdata(write_reference_files(tmp_path, reftypes=("superbias",))[
        "superbias"], "SCI")
    first_group = fits.getdata(raw, "SCI")[:, 0].astype(float).mean(axis=0)
    assert np.corrcoef(superbias.ravel(), first_group.ravel())[0, 1] > 0.8


def test_unknown_reftype_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="flat"):
        write_reference_files(tmp_path, reftypes=("flat",))


def test_reference_overrides_cover_every_reftype_of_every_step(tmp_path):
    refs = {"gain": tmp_path / "g.fits", "readnoise": tmp_path / "r.fits"}
    overrides = reference_overrides(refs)
    assert overrides["jump"] == {"gain": str(refs["gain"]), "readnoise": str(refs["readnoise"])}
    assert overrides["refpix"] == {"refpix": "N/A", "sirskernel": "N/A"}
    assert "group_scale" not in overrides  # no reference types
    assert set(reference_overrides(refs, ("ramp_fit",))) == {"ramp_fit"}


def test_group_times_average_the_frames():
    np.testing.assert_allclose(group_times(3, 2, 1, 1.0), [1.5, 4.5, 7.5])

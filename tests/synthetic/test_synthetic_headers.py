"""Synthetic exposures are valid FITS with realistic, consistent primary headers."""

from __future__ import annotations

import warnings

import pytest
from astropy.io import fits
from astropy.time import Time
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from refsmith.catalog.headers import HeaderError, read_header_text
from refsmith.synthetic.headers import (
    BAD_FILE_KINDS,
    INSTRUMENT_PROFILES,
    format_card,
    mjd_to_iso,
    write_bad_file,
    write_exposure,
)


def strict_header(path) -> fits.Header:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(path) as hdul:
            hdul.verify("exception")
            return hdul[0].header.copy()


@pytest.mark.parametrize("instrument", sorted(INSTRUMENT_PROFILES))
def test_each_instrument_gets_its_typical_setup(tmp_path, instrument):
    profile = INSTRUMENT_PROFILES[instrument]
    header = strict_header(write_exposure(tmp_path / "a_uncal.fits", instrument=instrument))
    assert header["INSTRUME"] == instrument
    assert header["DETECTOR"] == profile["detector"]
    assert header["SUBARRAY"] == profile["subarray"]
    assert header["READPATT"] == profile["readpatt"]
    assert header["EXP_TYPE"] == profile["dark"]
    assert (header["SUBSIZE1"], header["SUBSIZE2"]) == profile["subsize"]


def test_header_is_realistic_and_times_are_consistent(tmp_path):
    path = write_exposure(tmp_path / "a_uncal.fits", mjd=60123.456789, ngroups=10, nints=2,
                          exp_type="NRC_LED", steps={"dq_init": "COMPLETE", "S_IPC": "SKIPPED"})
    header = strict_header(path)
    assert len(header.cards) >= 140 and header["TELESCOP"] == "JWST"
    assert header["FILENAME"] == "a_uncal.fits" and header["NGROUPS"] == 10
    assert header["S_DQINIT"] == "COMPLETE" and header["S_IPC"] == "SKIPPED"
    assert header["EXPSTART"] == 60123.456789
    assert header["EXPSTART"] < header["EXPMID"] < header["EXPEND"]
    start = Time(f"{header['DATE-OBS']}T{header['TIME-OBS']}", scale="utc").mjd
    assert abs(start - header["EXPSTART"]) < 1e-8  # rounded to the millisecond
    assert abs(Time(header["DATE-BEG"], scale="utc").mjd - header["EXPSTART"]) < 1e-8
    assert abs(Time(header["DATE-END"], scale="utc").mjd - header["EXPEND"]) < 1e-8
    assert "linearity" in header["TITLE"]  # a long string written with CONTINUE cards


def test_extra_cards_override_add_and_remove(tmp_path):
    path = write_exposure(tmp_path / "a.fits",
                          extra={"DETECTOR": "NRCB2", "FILTER": None, "MYKEY": 1.5})
    header = strict_header(path)
    assert header["DETECTOR"] == "NRCB2" and "FILTER" not in header and header["MYKEY"] == 1.5


@pytest.mark.parametrize("ncards", [40, 150, 400])
def test_ncards_sets_the_header_length(tmp_path, ncards):
    path = write_exposure(tmp_path / "a.fits", ncards=ncards)
    text = read_header_text(str(path))
    meaningful = len(read_header_text(str(write_exposure(tmp_path / "b.fits", ncards=0)))) // 80
    assert len(text) // 80 == max(ncards, meaningful)  # never fewer than the meaningful cards
    assert path.stat().st_size % 2880 == 0


def test_data_adds_a_tiny_sci_extension(tmp_path):
    path = write_exposure(tmp_path / "a.fits", instrument="MIRI", ngroups=3, nints=2, data=True)
    with fits.open(path) as hdul:
        hdul.verify("exception")
        assert hdul["SCI"].data.shape == (2, 3, 64, 72)
        assert hdul["SCI"].data.dtype.name == "uint16" and hdul["SCI"].data.max() == 0


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.booleans(), st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=150),
))
def test_format_card_reads_back_through_astropy(value):
    card = format_card("KEY", value, "comment")
    expected = value.rstrip() if isinstance(value, str) else value
    if isinstance(value, str) and "''/" in value.replace("'", "''"):
        # astropy misreads its own card of such strings ("'/" -> "'": its value regex ends
        # the string at a doubled quote followed by '/'): it cannot judge them
        own = fits.Header.fromstring(str(fits.Card("KEY", value, "comment")))["KEY"]
        assume(own == expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        header = fits.Header.fromstring(card)
    assert header["KEY"] == expected and type(header["KEY"]) is type(expected)


@pytest.mark.parametrize("mjd", [60000.0, 60000.5, 59999.999999, 51544.123456789])
def test_mjd_to_iso_matches_astropy(mjd):
    day, clock = mjd_to_iso(mjd)
    assert f"{day}T{clock}" == Time(mjd, format="mjd", scale="utc").isot


@pytest.mark.parametrize("kind", BAD_FILE_KINDS)
def test_bad_files(tmp_path, kind):
    path = write_bad_file(tmp_path / f"{kind}.fits", kind, keyword="NINTS")
    if kind in ("not_fits", "truncated", "empty"):
        with pytest.raises(HeaderError):
            read_header_text(str(path))
    else:
        header = fits.getheader(path)
        if kind == "missing_keyword":
            assert "NINTS" not in header and "DETECTOR" in header
        else:
            assert header["EXPSTART"] == "abc"


def test_unknown_bad_file_kind_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown bad file kind"):
        write_bad_file(tmp_path / "x.fits", "wobbly")

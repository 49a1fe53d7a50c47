"""The fast header reader agrees with astropy, and reads only what it must."""

from __future__ import annotations

import gzip
import math
import subprocess
import sys
import warnings
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from astropy.io import fits
from astropy.io.fits.card import Undefined
from astropy.time import Time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refsmith.catalog.cache import HeaderCache
from refsmith.catalog.headers import (
    BLOCK,
    LEAP_SECOND_DAYS,
    HeaderError,
    iso_to_mjd,
    parse_cards,
    read_header_text,
    read_keywords,
    read_many,
)
from refsmith.synthetic.headers import format_card, header_text, primary_cards, write_exposure

HEADER = header_text(primary_cards()).encode()
KEYWORD_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
keywords = st.text(KEYWORD_CHARS, min_size=1, max_size=8).filter(
    lambda k: k not in {"END", "COMMENT", "HISTORY", "CONTINUE", "SIMPLE"}
)
printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90)
values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**18), max_value=10**18),
    st.floats(allow_nan=False, allow_infinity=False),
    printable,
)


def astropy_value(header: fits.Header, keyword: str) -> object:
    value = header[keyword]
    return None if isinstance(value, Undefined) else value


def assert_agrees(text: str, wanted: list[str], truth: dict | None = None) -> dict:
    """parse_cards returns exactly astropy's value (and type) for every wanted keyword.

    ``truth``: the string values written (first card of each keyword). Where astropy
    does not read back what it was given (a quote before '/' or a comment with quotes:
    see test_astropy_string_quirks), the reader must return the truth instead.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.Header.fromstring(text)
    got = parse_cards(text, wanted)
    for keyword in wanted:
        if keyword in header:
            expected = astropy_value(header, keyword)
            if truth and keyword in truth and expected != truth[keyword]:
                expected = truth[keyword]
            assert keyword in got, keyword
            assert got[keyword] == expected, (keyword, got[keyword], expected)
            assert type(got[keyword]) is type(expected), keyword
        else:
            assert keyword not in got
    assert {k for k in got if not k.startswith("S_")} <= set(wanted)
    return got


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keywords, values, min_size=1, max_size=30), st.data())
def test_astropy_formatted_cards_agree(cards, data):
    header = fits.Header()
    for keyword, value in cards.items():
        header[keyword] = (value, data.draw(printable, label="comment")[:20])
    text = header.tostring(sep="", endcard=False, padding=False)
    truth = {k: v.rstrip() for k, v in cards.items() if isinstance(v, str)}
    assert_agrees(text, [*cards, "ABSENT"], truth)


@pytest.mark.parametrize(
    ("card", "standard", "astropy"),
    [
        ("KEY     = '' / 'a'", "", "' / 'a"),
        ("KEY     = 'a''/b' / c", "a'/b", "a'"),
    ],
)
def test_astropy_string_quirks(card, standard, astropy):
    """astropy 8's string regex ends a value at the first quote followed by '/', ' ' or
    the card end that leaves a valid comment, so it misreads these cards (and its own
    output for the values '' + such a comment, or "a'/b"). This reader follows the FITS
    standard: a quote ends the string unless doubled."""
    card = card.ljust(80)
    assert parse_cards(card, ["KEY"]) == {"KEY": standard}
    assert fits.Card.fromstring(card).value == astropy  # update when astropy is fixed


def hand_card(keyword: str, field: str, comment: str) -> str:
    return f"{keyword:<8}= {field}{comment}"[:80].ljust(80)


strings = printable.map(lambda s: s[:60])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            keywords,
            st.one_of(
                st.integers(-(10**9), 10**9).map(str),
                st.floats(allow_nan=False, allow_infinity=False, width=32).map(
                    lambda f: repr(f).upper().replace("E", "D")),
                st.floats(allow_nan=False, allow_infinity=False).map(repr),
                st.sampled_from(["T", "F", "", "+5", "-0", "5.", ".5", "1.5E-3", "1.5D+3"]),
                strings.map(lambda s: "'" + s.replace("'", "''") + "'"),
            ),
            st.integers(0, 30),
            st.sampled_from(["", " / a comment", "/c", " /", " / it's / two", " / 'q'"]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_free_format_cards_agree(cards):
    """Padding, comments, D exponents, quotes: values placed anywhere in columns 11-80."""
    kept = [(k, f, pad, c) for k, f, pad, c in cards if len(f) + pad <= 68]
    text = "".join(hand_card(k, " " * pad + f, c) for k, f, pad, c in kept)
    first: dict[str, str] = {}
    for k, f, _, _ in kept:
        first.setdefault(k, f)
    truth = {k: f[1:-1].replace("''", "'").rstrip() for k, f in first.items() if f[:1] == "'"}
    if kept:
        assert_agrees(text, [k for k, *_ in kept], truth)


def test_long_string_with_continue_falls_back_to_astropy():
    long = "a 'quoted' value " * 10
    text = format_card("TITLE", long, "title") + format_card("DETECTOR", "NRCA1")
    got = assert_agrees(text, ["TITLE", "DETECTOR"])
    assert got["TITLE"] == long.rstrip()


def test_hierarch_and_complex_values_fall_back_to_astropy():
    header = fits.Header()
    header["HIERARCH ESO DET CHIP NAME"] = "CCD-44"
    header["CPLX"] = 1 + 2j
    header["DETECTOR"] = "NRCA1"
    text = header.tostring(sep="", endcard=False, padding=False)
    got = parse_cards(text, ["ESO DET CHIP NAME", "CPLX", "DETECTOR"])
    assert got == {"ESO DET CHIP NAME": "CCD-44", "CPLX": "(1+2j)", "DETECTOR": "NRCA1"}


def test_first_card_of_a_duplicated_keyword_wins_as_in_astropy():
    text = format_card("NGROUPS", 5) + format_card("NGROUPS", 7)
    assert assert_agrees(text, ["NGROUPS"]) == {"NGROUPS": 5}


def test_names_inside_values_or_comments_are_not_cards():
    text = (
        format_card("OBSLABEL", "DETECTOR= 'X'", "NGROUPS = 3")
        + format_card("COMMENT", comment="DETECTOR= 'Y'")
        + format_card("XDETECTO", "Z")
    )
    assert parse_cards(text, ["DETECTOR", "NGROUPS"]) == {}


def test_step_status_cards_are_all_returned():
    text = (
        format_card("GS_V0001", 1.0)  # 'S_' inside a keyword is not a step card
        + format_card("S_DQINIT", "COMPLETE")
        + format_card("S_IPC", "SKIPPED")
        + format_card("S_NEWSTP", "FAILED")
    )
    assert parse_cards(text, []) == {
        "S_DQINIT": "COMPLETE", "S_IPC": "SKIPPED", "S_NEWSTP": "FAILED",
    }


def test_synthetic_header_agrees_on_every_keyword(tmp_path):
    path = write_exposure(tmp_path / "a_uncal.fits", steps={"dq_init": "COMPLETE"})
    header = fits.getheader(path)
    wanted = [k for k in header if k not in ("", "COMMENT", "HISTORY")]
    got = read_keywords(str(path), wanted)
    for keyword in wanted:
        assert got[keyword] == header[keyword] and type(got[keyword]) is type(header[keyword])


def test_gzip_files_are_read_through_the_standard_library(tmp_path):
    plain = write_exposure(tmp_path / "a_uncal.fits", detector="NRCB4")
    packed = tmp_path / "a_uncal.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_keywords(str(packed), ["DETECTOR"]) == {"DETECTOR": "NRCB4"}
    corrupt = tmp_path / "b_uncal.fits.gz"
    corrupt.write_bytes(gzip.compress(plain.read_bytes())[:200])
    with pytest.raises(HeaderError, match="corrupt gzip"):
        read_header_text(str(corrupt))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"hello world\n" * 300, "not a FITS file"),
        (HEADER[:BLOCK], "truncated: no END card"),
        (HEADER[: HEADER.rfind(b"END ")], "truncated: no END card"),
    ],
)
def test_structural_errors_have_specific_reasons(tmp_path, content, reason):
    path = tmp_path / "bad.fits"
    path.write_bytes(content)
    with pytest.raises(HeaderError, match=reason):
        read_header_text(str(path))
    ((_, values, error, cacheable),) = read_many([str(path)], ["DETECTOR"])
    assert values is None and reason in error and cacheable


def test_read_many_reports_os_errors_as_not_cacheable(tmp_path):
    ((_, values, error, cacheable),) = read_many([str(tmp_path / "gone.fits")], ["X"])
    assert values is None and error.startswith("cannot read:") and not cacheable


def test_header_of_many_blocks_is_read_to_its_end(tmp_path):
    path = write_exposure(tmp_path / "big.fits", ncards=1000, extra={"LASTONE": 42})
    got = read_keywords(str(path), ["LASTONE", "DETECTOR"])
    assert got == {"LASTONE": 42, "DETECTOR": "NRCA1"}


@pytest.mark.parametrize(
    ("date", "time"),
    [
        ("2022-06-01", "12:00:00.000"),
        ("2022-06-01T12:00:00.000", None),
        ("2016-12-31T23:59:59.999", None),
        ("2024-02-29", "00:00:00"),
        ("1999-01-01", None),
        ("2022-06-01T07:08", None),
    ],
)
def test_iso_to_mjd_matches_astropy(date, time):
    iso = f"{date}T{time}" if time else date
    if len(iso) == 16:
        iso += ":00"
    assert abs(iso_to_mjd(date, time) - Time(iso, format="isot", scale="utc").mjd) < 1e-8


@pytest.mark.parametrize("day", sorted(LEAP_SECOND_DAYS))
def test_leap_second_days_match_astropy(day):
    text = Time(day, format="mjd", scale="utc").isot[:10]
    for clock in ("12:00:00.000", "23:59:60.500"):
        expected = Time(f"{text}T{clock}", format="isot", scale="utc").mjd
        assert abs(iso_to_mjd(text, clock) - expected) < 1e-8
    assert Time(f"{text}T23:59:60", format="isot", scale="utc").mjd < day + 1


def test_leap_second_on_a_normal_day_is_rejected():
    with pytest.raises(ValueError):
        iso_to_mjd("2022-06-01", "23:59:60.5")


@pytest.mark.filterwarnings("ignore:ERFA function")  # 'dubious year' past the leap table
@settings(max_examples=100, deadline=None)
@given(st.datetimes(min_value=datetime(1990, 1, 1),
                    max_value=datetime(2060, 1, 1)))
def test_iso_to_mjd_matches_astropy_for_any_datetime(moment):
    text = moment.isoformat(timespec="milliseconds")
    expected = Time(text, format="isot", scale="utc").mjd
    assert abs(iso_to_mjd(text) - expected) < 1e-8
    day, clock = text.split("T")
    assert abs(iso_to_mjd(day, clock) - expected) < 1e-8


@pytest.mark.parametrize(
    ("date", "time"),
    [("abc", None), ("2022-13-01", None), ("2022-06-01T25:00:00", None),
     ("2022-06-01", "noon"), ("2022/06/01", None)],
)
def test_iso_to_mjd_rejects_garbage(date, time):
    with pytest.raises(ValueError):
        iso_to_mjd(date, time)


def test_reader_does_not_import_astropy(tmp_path):
    path = write_exposure(tmp_path / "a_uncal.fits")
    code = (
        "import sys; from refsmith.catalog.headers import read_many; "
        f"r = read_many([{str(path)!r}], ['DETECTOR']); "
        "assert r[0][1] == {'DETECTOR': 'NRCA1'}, r; "
        "assert 'astropy' not in sys.modules and 'numpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def identity(size: int, mtime_ns: int, ctime_ns: int = 5, inode: int = 7) -> SimpleNamespace:
    """What the cache looks at in an os.stat_result."""
    return SimpleNamespace(st_size=size, st_mtime_ns=mtime_ns, st_ctime_ns=ctime_ns,
                           st_ino=inode)


def test_cache_round_trip_and_schema(tmp_path: Path):
    cache = HeaderCache.open(tmp_path / "sub" / "c.sqlite")
    assert cache is not None
    cache.store([("/a", identity(10, 20), "A,B,S_*", "", {"A": 1}),
                 ("/b", identity(1, 2), "A", "empty file", None)])
    stats = {"/a": identity(10, 20), "/b": identity(1, 2), "/c": identity(1, 1)}
    hits = cache.lookup(stats, ["A"], "A,S_*", lambda key: "A" in key.split(","))
    assert hits == {"/a": ({"A": 1}, ""), "/b": (None, "empty file")}
    for changed in (identity(10, 21), identity(10, 20, ctime_ns=6), identity(10, 20, inode=8)):
        assert cache.lookup({"/a": changed}, ["A"], "A,S_*", lambda key: True) == {}
    cache.close()


def test_cache_keeps_values_json_alone_can_read(tmp_path: Path):
    cache = HeaderCache.open(tmp_path / "c.sqlite")
    cache.store([("/a", identity(1, 1), "A", "", {"A": float("nan"), "B": 1e300, "C": "é"}),
                 ("/b", identity(1, 1), "A", "", {"A": 2})])
    hits = cache.lookup({"/a": identity(1, 1), "/b": identity(1, 1)}, ["A"], "A",
                        lambda key: True)
    assert math.isnan(hits["/a"][0]["A"]) and hits["/a"][0]["C"] == "é"
    assert hits["/b"] == ({"A": 2}, "")
    cache.close()


def test_unusable_cache_file_is_ignored_with_a_warning(tmp_path):
    bad = tmp_path / "c.sqlite"
    bad.write_text("not a database" * 100)
    with pytest.warns(UserWarning, match="not used"):
        assert HeaderCache.open(bad) is None

"""Synthetic JWST exposures for the demo, tests and benchmarks.

:func:`write_exposure` writes a file whose primary header looks like a real
``_uncal.fits`` one (same keywords, order and formatting, ~150 cards) with no data, or a
tiny SCI extension. Headers are built as bytes directly (writing 10,000 files takes a
few seconds); the cards are tested to read back identically through astropy.
:func:`write_bad_file` writes the kinds of broken files the catalog must survive.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from refsmith.detector1.keywords import STEP_KEYWORDS

BLOCK = 2880
MJD_EPOCH = date(1858, 11, 17).toordinal()

# Typical small-subarray set-up and default dark/flat EXP_TYPE per instrument (these ran
# through calwebb_detector1, see JWST_PIPELINE_NOTES.md).
INSTRUMENT_PROFILES: dict[str, dict[str, Any]] = {
    "NIRCAM": {"detector": "NRCA1", "subarray": "SUB64P", "readpatt": "RAPID",
               "dark": "NRC_DARK", "flat": "NRC_FLAT", "substrt": (1, 1),
               "subsize": (64, 64), "tframe": 0.05016, "axes": (-1, 2)},
    "NIRISS": {"detector": "NIS", "subarray": "SUB64", "readpatt": "NISRAPID",
               "dark": "NIS_DARK", "flat": "NIS_LAMP", "substrt": (1, 1),
               "subsize": (64, 64), "tframe": 0.05016, "axes": (-2, -1)},
    "NIRSPEC": {"detector": "NRS1", "subarray": "SUB32", "readpatt": "NRSRAPID",
                "dark": "NRS_DARK", "flat": "NRS_LAMP", "substrt": (1, 1),
                "subsize": (32, 32), "tframe": 0.01496, "axes": (2, 1)},
    "MIRI": {"detector": "MIRIMAGE", "subarray": "SUB64", "readpatt": "FAST",
             "dark": "MIR_DARKIMG", "flat": "MIR_FLATIMAGE", "substrt": (1, 779),
             "subsize": (72, 64), "tframe": 0.08544, "axes": (1, 2)},
    "FGS": {"detector": "GUIDER1", "subarray": "SUB64", "readpatt": "FGSRAPID",
            "dark": "FGS_DARK", "flat": "FGS_INTFLAT", "substrt": (1, 1),
            "subsize": (64, 64), "tframe": 0.05016, "axes": (-2, 1)},
}
BAD_FILE_KINDS = ("not_fits", "truncated", "empty", "missing_keyword", "bad_time")

_TITLE = ("Detector-level calibration of the near-infrared arrays: darks, flats and "
          "linearity with the internal lamps (synthetic)")


def format_card(keyword: str, value: Any = None, comment: str = "") -> str:
    """One or more 80-character FITS cards (long strings use CONTINUE cards).

    ``value`` may be str, bool, int, float or None (an undefined value). A keyword of
    '' or 'COMMENT' / 'HISTORY' makes a commentary card with ``comment`` as its text.
    """
    if keyword in ("", "COMMENT", "HISTORY"):
        return f"{keyword:<8}{comment}"[:80].ljust(80)
    if isinstance(value, str):
        escaped = value.replace("'", "''")
        if len(escaped) > 68:
            return _long_string(keyword, escaped, comment)
        text = f"'{escaped:<8}'".ljust(20)
    elif isinstance(value, bool):
        text = ("T" if value else "F").rjust(20)
    elif isinstance(value, int):
        text = str(value).rjust(20)
    elif isinstance(value, float):
        text = _float_text(value).rjust(20)
    elif value is None:
        text = " " * 20
    else:
        raise TypeError(f"{keyword}: cannot write a {type(value).__name__} value")
    card = f"{keyword:<8}= {text}"
    if len(card) > 80:
        raise ValueError(f"{keyword}: value too long for one card")
    if comment and len(card) < 77:
        card += " / " + comment
    return card[:80].ljust(80)


def _float_text(value: float) -> str:
    text = repr(float(value)).upper()
    mantissa, _, exponent = text.partition("E")
    if "." not in mantissa and mantissa.lstrip("-").isdigit():
        mantissa += ".0"
    return mantissa + ("E" + exponent if exponent else "")


def _long_string(keyword: str, escaped: str, comment: str) -> str:
    """A long string value as a first card and CONTINUE cards (67 characters each)."""
    chunks = []
    while escaped:
        size = 67
        if len(escaped) > size and escaped[size - 1] == "'" and escaped[:size].count("'") % 2:
            size -= 1  # do not split a '' escape
        chunks.append(escaped[:size])
        escaped = escaped[size:]
    cards = []
    for i, chunk in enumerate(chunks):
        more = "&" if i < len(chunks) - 1 else ""
        head = f"{keyword:<8}= " if i == 0 else "CONTINUE  "
        cards.append(f"{head}'{chunk}{more}'".ljust(80))
    return "".join(cards)


def mjd_to_iso(mjd: float) -> tuple[str, str]:
    """``(date, time)`` strings (UTC, millisecond precision) of an MJD."""
    milliseconds = round(mjd * 86_400_000)
    days, rest = divmod(milliseconds, 86_400_000)
    seconds, ms = divmod(rest, 1000)
    day = date.fromordinal(MJD_EPOCH + days).isoformat()
    return day, f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{ms:03d}"


def primary_cards(
    *,
    instrument: str = "NIRCAM",
    detector: str | None = None,
    exp_type: str | None = None,
    readpatt: str | None = None,
    subarray: str | None = None,
    ngroups: int = 5,
    nints: int = 1,
    mjd: float = 60000.0,
    steps: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    filename: str = "synthetic_uncal.fits",
) -> dict[str, tuple[Any, str]]:
    """The meaningful primary-header cards (keyword -> (value, comment)), in order.

    Unset set-up values come from :data:`INSTRUMENT_PROFILES` of ``instrument``; its
    dark EXP_TYPE is the default ``exp_type``. ``steps`` maps step names (or S_*
    keywords) to COMPLETE / SKIPPED; ``extra`` adds or overrides cards (None removes).
    """
    profile = INSTRUMENT_PROFILES.get(instrument.upper(), INSTRUMENT_PROFILES["NIRCAM"])
    tframe = profile["tframe"]
    tgroup = tframe
    duration = nints * ngroups * tgroup
    end = mjd + duration / 86400.0
    start_date, start_time = mjd_to_iso(mjd)
    end_date, end_time = mjd_to_iso(end)
    x0, y0 = profile["substrt"]
    nx, ny = profile["subsize"]
    cards: dict[str, tuple[Any, str]] = {
        "SIMPLE": (True, "conforms to FITS standard"),
        "BITPIX": (8, "array data type"),
        "NAXIS": (0, "number of array dimensions"),
        "EXTEND": (True, ""),
        "DATE": (f"{start_date}T{start_time}", "UTC date file created"),
        "ORIGIN": ("STSCI", "Organization responsible for creating file"),
        "TIMESYS": ("UTC", "principal time system for time-related keywords"),
        "TIMEUNIT": ("s", "Default unit applicable to all time values"),
        "FILENAME": (filename, "Name of the file"),
        "FILETYPE": ("uncalibrated", "Type of data in the file"),
        "DATAMODL": ("Level1bModel", "Type of data model"),
        "TELESCOP": ("JWST", "Telescope used to acquire the data"),
        "SDP_VER": ("2024_3", "Data processing software version number"),
        "PRD_VER": ("PRDOPSSOC-067", "S&OC PRD version number used in data processing"),
        "OSS_VER": ("9.1.4", "Observatory Scheduling Software (OSS) version num"),
        "TITLE": (_TITLE, "Proposal title"),
        "PI_NAME": ("O'Brien, Refsmith", "Principal investigator name"),
        "CATEGORY": ("CAL", "Program category"),
        "SUBCAT": ("DETECTOR", "Program sub-category"),
        "SCICAT": ("Calibration", "Science category assigned during TAC process"),
        "CONT_ID": (0, "Continuation of previous program"),
        "PROGRAM": ("01234", "Program number"),
        "OBSERVTN": ("001", "Observation number"),
        "VISIT": ("001", "Visit number"),
        "VISITGRP": ("01", "Visit group identifier"),
        "SEQ_ID": ("1", "Parallel sequence identifier"),
        "ACT_ID": ("01", "Activity identifier"),
        "EXPOSURE": ("00001", "Exposure request number"),
        "TEMPLATE": ("NIRCam Dark", "Proposal instruction template used"),
        "OBSLABEL": ("Dark current monitor", "Proposer label for the observation"),
        "VISITYPE": ("PRIME_TARGETED_FIXED", "Visit type"),
        "DATE-OBS": (start_date, "[yyyy-mm-dd] UTC date at start of exposure"),
        "TIME-OBS": (start_time, "[hh:mm:ss.sss] UTC time at start of exposure"),
        "DATE-BEG": (f"{start_date}T{start_time}", "Date-time start of exposure"),
        "DATE-END": (f"{end_date}T{end_time}", "Date-time end of exposure"),
        "TARG_RA": (80.4875, "Target RA at mid time of exposure"),
        "TARG_DEC": (-69.4983, "Target Dec at mid time of exposure"),
        "": (None, "Instrument configuration information"),
        "INSTRUME": (instrument.upper(), "Instrument used to acquire the data"),
        "DETECTOR": (detector or profile["detector"], "Name of detector used to acquire data"),
        "FILTER": ("F210M" if instrument.upper() == "NIRCAM" else "CLEAR", "Filter element"),
        "PUPIL": ("CLEAR", "Pupil element used"),
        "EXP_TYPE": (exp_type or profile["dark"], "Type of data in the exposure"),
        "EXPSTART": (mjd, "[d] exposure start time in MJD"),
        "EXPMID": ((mjd + end) / 2, "[d] exposure mid time in MJD"),
        "EXPEND": (end, "[d] exposure end time in MJD"),
        "READPATT": (readpatt or profile["readpatt"], "Readout pattern"),
        "NINTS": (nints, "Number of integrations in exposure"),
        "NGROUPS": (ngroups, "Number of groups in integration"),
        "NFRAMES": (1, "Number of frames per group"),
        "GROUPGAP": (0, "Number of frames dropped between groups"),
        "NSAMPLES": (1, "Number of A/D samples per pixel"),
        "TSAMPLE": (10.0, "[us] Time between samples"),
        "TFRAME": (tframe, "[s] Time between frames"),
        "TGROUP": (tgroup, "[s] Time between groups"),
        "EFFINTTM": (tgroup * (ngroups - 1), "[s] Effective integration time"),
        "EFFEXPTM": (tgroup * (ngroups - 1) * nints, "[s] Effective exposure time"),
        "DURATION": (duration, "[s] Total duration of exposure"),
        "NRSTSTRT": (1, "Number of resets at start of exposure"),
        "NRESETS": (1, "Number of resets between integrations"),
        "ZEROFRAM": (False, "T if a zero frame was read separately"),
        "DATAPROB": (False, "Science telemetry indicated a problem"),
        "SUBARRAY": (subarray or profile["subarray"], "Subarray used"),
        "SUBSTRT1": (x0, "Starting pixel in axis 1 direction"),
        "SUBSTRT2": (y0, "Starting pixel in axis 2 direction"),
        "SUBSIZE1": (nx, "Number of pixels in axis 1 direction"),
        "SUBSIZE2": (ny, "Number of pixels in axis 2 direction"),
        "FASTAXIS": (profile["axes"][0], "Fast readout axis direction"),
        "SLOWAXIS": (profile["axes"][1], "Slow readout axis direction"),
    }
    for step, status in (steps or {}).items():
        keyword = step.upper() if step.upper().startswith("S_") else STEP_KEYWORDS[step]
        cards[keyword] = (status, f"{step} step status")
    for keyword, value in (extra or {}).items():
        keyword = keyword.upper()
        if value is None:
            cards.pop(keyword, None)
        else:
            comment = cards[keyword][1] if keyword in cards else ""
            cards[keyword] = (value, comment)
    return cards


@lru_cache(maxsize=64)
def _filler(count: int) -> str:
    """``count`` filler cards with a mix of value types (cached: they never change)."""
    kinds = [
        lambda i: format_card(f"GS_V{i:04d}", 1.0 + i * 1e-5, "[arcsec] guide star offset"),
        lambda i: format_card(f"PWR{i:05d}", i, "Telemetry counter"),
        lambda i: format_card(f"MNEM{i:04d}", f"IN'{i}", "Mnemonic state"),
        lambda i: format_card(f"FLAG{i:04d}", i % 2 == 0, "Engineering flag"),
        lambda i: format_card("HISTORY", comment=f"synthetic filler card {i}"),
    ]
    return "".join(kinds[i % len(kinds)](i) for i in range(count))


def header_text(cards: Mapping[str, tuple[Any, str]], ncards: int = 150) -> str:
    """A complete primary header (padded to 2880-byte blocks, END included)."""
    body = "".join(format_card(k, v, c) for k, (v, c) in cards.items())
    body += _filler(max(0, ncards - len(body) // 80))
    body += "END".ljust(80)
    return body.ljust(-(-len(body) // BLOCK) * BLOCK)


def write_exposure(
    path: str | Path,
    *,
    instrument: str = "NIRCAM",
    detector: str | None = None,
    exp_type: str | None = None,
    readpatt: str | None = None,
    subarray: str | None = None,
    ngroups: int = 5,
    nints: int = 1,
    mjd: float = 60000.0,
    steps: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    ncards: int = 150,
    data: bool = False,
) -> Path:
    """Write a synthetic raw exposure; return its path.

    Parameters
    ----------
    path : str or Path
        Where to write (parent directories are created).
    instrument, detector, exp_type, readpatt, subarray : str
        Set-up; unset ones come from ``INSTRUMENT_PROFILES[instrument]`` (NIRCam:
        NRCA1, NRC_DARK, RAPID, SUB64P).
    ngroups, nints : int
        Ramp shape (also sets the exposure times and SCI data shape).
    mjd : float
        Exposure start (EXPSTART); EXPMID/EXPEND, DATE-OBS/TIME-OBS and
        DATE-BEG/DATE-END are consistent with it.
    steps : mapping, optional
        Step name (or S_* keyword) -> 'COMPLETE' / 'SKIPPED' / 'FAILED'.
    extra : mapping, optional
        Cards to add or override; a value of None removes the card.
    ncards : int
        Number of primary-header cards (filled up with telemetry-like cards).
    data : bool
        Append a SCI image extension of zeros, uint16, shape
        (nints, ngroups, SUBSIZE2, SUBSIZE1).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cards = primary_cards(
        instrument=instrument, detector=detector, exp_type=exp_type, readpatt=readpatt,
        subarray=subarray, ngroups=ngroups, nints=nints, mjd=mjd, steps=steps, extra=extra,
        filename=path.name,
    )
    content = header_text(cards, ncards).encode("ascii")
    if data:
        content += _sci_extension(cards, ngroups, nints)
    path.write_bytes(content)
    return path


def _sci_extension(cards: Mapping[str, tuple[Any, str]], ngroups: int, nints: int) -> bytes:
    nx = int(cards.get("SUBSIZE1", (64, ""))[0])
    ny = int(cards.get("SUBSIZE2", (64, ""))[0])
    header = header_text({
        "XTENSION": ("IMAGE", "Image extension"),
        "BITPIX": (16, "array data type"),
        "NAXIS": (4, "number of array dimensions"),
        "NAXIS1": (nx, ""), "NAXIS2": (ny, ""), "NAXIS3": (ngroups, ""), "NAXIS4": (nints, ""),
        "PCOUNT": (0, "number of parameters"),
        "GCOUNT": (1, "number of groups"),
        "EXTNAME": ("SCI", "extension name"),
        "BSCALE": (1, ""),
        "BZERO": (32768, ""),
    }, ncards=0)
    raw = b"\x80\x00" * (nx * ny * ngroups * nints)  # uint16 zeros (stored as int16 - 32768)
    return header.encode("ascii") + raw + b"\x00" * (-len(raw) % BLOCK)


def write_bad_file(path: str | Path, kind: str, *, keyword: str = "DETECTOR") -> Path:
    """Write a broken file of ``kind`` (one of :data:`BAD_FILE_KINDS`); return its path.

    ``not_fits``: text; ``truncated``: a header cut before its END card; ``empty``:
    0 bytes; ``missing_keyword``: a good header without ``keyword``; ``bad_time``:
    EXPSTART = 'abc'.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "not_fits":
        path.write_text("this is not a FITS file\n" * 10)
    elif kind == "truncated":
        path.write_bytes(header_text(primary_cards(filename=path.name)).encode()[:BLOCK])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "missing_keyword":
        write_exposure(path, extra={keyword: None})
    elif kind == "bad_time":
        write_exposure(path, extra={"EXPSTART": "abc"})
    else:
        raise ValueError(f"unknown bad file kind {kind!r}; expected one of {BAD_FILE_KINDS}")
    return path

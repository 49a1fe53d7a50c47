"""Fast primary-header reader (only the needed cards); stdlib only. Its SQLite cache is
:mod:`refsmith.catalog.cache`.

The hot path of planning is reading a few keywords from thousands of primary headers.
astropy parses ~1,000 headers/s; this reader reads 2880-byte blocks up to the END card
and parses only the wanted 80-byte cards by hand (~10x faster). Cards it does not handle
(CONTINUE long strings, complex values, anything unusual) fall back to astropy for that
card or header, so its answers always agree with ``astropy.io.fits`` (tested).

This module must not import astropy (or anything heavy) at import time: it is what the
reader processes of :func:`refsmith.catalog.catalog.scan` import (:mod:`refsmith.catalog.pool`
runs them).
"""

from __future__ import annotations

import gzip
import os
import re
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from functools import lru_cache
from typing import Any

BLOCK = 2880
CARD = 80
# Give up looking for END after this many bytes (72,000 cards); real headers are < 1,000.
MAX_HEADER_BYTES = BLOCK * 2000
# Prefix of the calwebb_detector1 step-status keywords; every such card is returned.
STEP_PREFIX = "S_"

_GZIP_MAGIC = b"\x1f\x8b"
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[EeDd][+-]?[0-9]+)?")
_MJD_EPOCH = date(1858, 11, 17).toordinal()
_DATE = re.compile(r"\s*(\d{4})-(\d\d)-(\d\d)(?:[T ](.*))?")
# UTC days that ended with a leap second (86,401 s long; IERS, none announced since 2016).
# astropy's UTC MJD divides the seconds of such a day by 86,401; so do we.
LEAP_SECOND_DAYS = frozenset(
    date.fromisoformat(day).toordinal() - _MJD_EPOCH
    for day in (
        "1972-06-30", "1972-12-31", "1973-12-31", "1974-12-31", "1975-12-31", "1976-12-31",
        "1977-12-31", "1978-12-31", "1979-12-31", "1981-06-30", "1982-06-30", "1983-06-30",
        "1985-06-30", "1987-12-31", "1989-12-31", "1990-12-31", "1992-06-30", "1993-06-30",
        "1994-06-30", "1995-12-31", "1997-06-30", "1998-12-31", "2005-12-31", "2008-12-31",
        "2012-06-30", "2015-06-30", "2016-12-31",
    )
)
_TIME = re.compile(r"\s*(\d\d):(\d\d)(?::(\d\d(?:\.\d*)?))?\s*")


class HeaderError(Exception):
    """The file has no readable primary header; the message is the user-facing reason."""


class _Fallback(Exception):
    """The fast parser does not handle this card; let astropy parse it."""


def read_header_text(path: str) -> str:
    """Return the primary header of ``path`` as text, up to (not including) the END card.

    Gzip-compressed files (recognised by their magic bytes) are read through the standard
    library's :mod:`gzip`. The file is opened read-only and never modified.

    Raises
    ------
    HeaderError
        Empty file, not FITS (first card is not SIMPLE), truncated (no END card), or
        a corrupt gzip stream.
    OSError
        The file cannot be opened or read (permission, I/O error).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        data = os.read(fd, BLOCK * 5)
        if data[:2] != _GZIP_MAGIC:
            return _scan_for_end(lambda size: os.read(fd, size), data)
        os.lseek(fd, 0, os.SEEK_SET)
        with os.fdopen(os.dup(fd), "rb") as raw, gzip.open(raw, "rb") as unzipped:
            try:
                return _scan_for_end(unzipped.read, unzipped.read(BLOCK * 5))
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                raise HeaderError(f"corrupt gzip file ({exc})") from None
    finally:
        os.close(fd)


def _scan_for_end(read: Callable[[int], bytes], data: bytes) -> str:
    """Read on (``read(size)``) after ``data`` until the END card; return the header."""
    if not data:
        raise HeaderError("empty file (0 bytes)")
    if data[:8] != b"SIMPLE  ":
        raise HeaderError(f"not a FITS file (first card is not SIMPLE: starts {data[:20]!r})")
    searched = 0
    while True:
        position = _find_end(data, searched)
        if position >= 0:
            return data[:position].decode("latin-1")
        searched = len(data) - len(data) % CARD
        if len(data) >= MAX_HEADER_BYTES:
            raise HeaderError(f"no END card in the first {len(data)} bytes of the header")
        more = read(BLOCK * 8)
        if not more:
            raise HeaderError(f"truncated: no END card in the file ({len(data)} bytes)")
        data += more


def _find_end(data: bytes, start: int) -> int:
    """Offset of the first card-aligned ``END`` card at or after ``start``, or -1."""
    position = data.find(b"END     ", start)
    while position >= 0:
        if position % CARD == 0 and position + CARD <= len(data):
            return position
        position = data.find(b"END     ", position + 1)
    return -1


def parse_cards(
    text: str, keywords: Iterable[str], prefixes: Sequence[str] = (STEP_PREFIX,)
) -> dict[str, Any]:
    """Return ``{keyword: value}`` for the wanted keywords present in header ``text``.

    Parameters
    ----------
    text : str
        Header text (80-character cards, as from :func:`read_header_text`).
    keywords : iterable of str
        Upper-case keyword names (at most 8 characters; longer names, which need
        HIERARCH, are looked up through astropy).
    prefixes : sequence of str
        Every keyword starting with one of these is returned too (step statuses).

    Returns
    -------
    dict
        Values as astropy gives them: str (trailing blanks removed, ``''`` unescaped),
        int, float, bool, or None for an undefined value. The first card of a keyword
        wins, as in astropy. Absent keywords are absent from the dict.
    """
    finder, hierarch = _card_finder(tuple(keywords), tuple(prefixes))
    values: dict[str, Any] = {}
    match = finder(text)
    while match:
        start = match.start(1)
        keyword = match[1].rstrip()
        if keyword not in values:  # the first card of a keyword wins, as in astropy
            values[keyword] = _card_value(text, start)
        match = finder(text, start + CARD)
    if hierarch:
        values.update(_astropy_values(text, hierarch))
    return values


@lru_cache(maxsize=64)
def _card_finder(
    keywords: tuple[str, ...], prefixes: tuple[str, ...]
) -> tuple[Callable[..., Any], tuple[str, ...]]:
    """``match(text, pos)`` finding the next wanted value card from ``pos``, and the
    wanted keywords it cannot find (longer than 8 characters: HIERARCH cards).

    The lazy ``(?:.{80})*?`` steps from card start to card start, so a wanted name is
    only recognised at the start of a card (never inside a value or comment).
    """
    short = [k for k in keywords if len(k) <= 8 and " " not in k]
    names = [re.escape(k.ljust(8)) for k in short]
    names += [re.escape(p) + f"[ -~]{{{8 - len(p)}}}" for p in prefixes if len(p) <= 8]
    alternatives = "|".join(names) or "(?!)"
    pattern = re.compile(r"(?s)(?:.{80})*?(" + alternatives + ")=")
    return pattern.match, tuple(k for k in keywords if k not in short)


def _card_value(text: str, position: int) -> Any:
    """Parse the value of the card at ``position`` (fast path, else astropy)."""
    card = text[position : position + CARD]
    try:
        if card[9] != " ":
            raise _Fallback
        value = parse_value(card[10:])
        if isinstance(value, str) and value.endswith("&") and _continued(text, position):
            raise _Fallback
        return value
    except (_Fallback, IndexError):
        keyword = card[:8].rstrip()
        return _astropy_values(text, [keyword]).get(keyword)


def parse_value(field: str) -> Any:
    """Parse a FITS value field (card columns 11-80) by hand.

    Handles quoted strings (with ``''`` escapes), integers, floats (E or D exponent),
    the logicals T/F and undefined values; raises ``_Fallback`` for anything else.
    """
    stripped = field.lstrip()
    if stripped.startswith("'"):
        end = stripped.find("'", 1)
        while end >= 0 and stripped[end + 1 : end + 2] == "'":
            end = stripped.find("'", end + 2)
        if end < 0:
            raise _Fallback
        rest = stripped[end + 1 :].lstrip()
        if rest and rest[0] != "/":
            raise _Fallback
        return stripped[1:end].replace("''", "'").rstrip()
    token = stripped.split("/", 1)[0].rstrip()
    if token == "T":
        return True
    if token == "F":
        return False
    if not token:
        return None
    if _INT.fullmatch(token):
        return int(token)
    if _FLOAT.fullmatch(token):
        return float(token.replace("D", "E").replace("d", "e"))
    raise _Fallback


def _continued(text: str, position: int) -> bool:
    """Whether the card after ``position`` is a CONTINUE card."""
    following = position + CARD
    return text[following : following + 8] == "CONTINUE"


def _astropy_values(text: str, keywords: Iterable[str]) -> dict[str, Any]:
    """Parse ``text`` with astropy and return the wanted keywords (the slow fallback)."""
    from astropy.io import fits
    from astropy.io.fits.card import Undefined

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.Header.fromstring(text)
        values = {}
        for keyword in keywords:
            if keyword in header:
                try:
                    value = header[keyword]
                except Exception:  # unparsable card: keep its raw value text
                    value = str(header.cards[keyword].image[10:]).strip()
                values[keyword] = _plain(value, Undefined)
    return values


def _plain(value: Any, undefined: type) -> Any:
    """A JSON-ready version of an astropy card value."""
    if isinstance(value, undefined):
        return None
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def read_keywords(
    path: str, keywords: Iterable[str], prefixes: Sequence[str] = (STEP_PREFIX,)
) -> dict[str, Any]:
    """Read the wanted keywords from the primary header of ``path``.

    Raises HeaderError (with the user-facing reason) or OSError; see
    :func:`read_header_text` and :func:`parse_cards`.
    """
    return parse_cards(read_header_text(path), keywords, prefixes)


def read_many(
    paths: Sequence[str], keywords: Sequence[str], prefixes: Sequence[str] = (STEP_PREFIX,)
) -> list[tuple[str, dict[str, Any] | None, str, bool]]:
    """Read many files; never raises (the task function of the reader processes).

    Returns
    -------
    list of (path, values, error, cacheable)
        ``values`` is None when the file could not be read; ``error`` then says why.
        ``cacheable`` is False for errors that do not depend on the file's content
        (permission, I/O) so that they are not remembered in the cache.
    """
    results: list[tuple[str, dict[str, Any] | None, str, bool]] = []
    for path in paths:
        try:
            results.append((path, read_keywords(path, keywords, prefixes), "", True))
        except HeaderError as exc:
            results.append((path, None, str(exc), True))
        except OSError as exc:
            results.append((path, None, f"cannot read: {exc.strerror or exc}", False))
        except Exception as exc:  # a header even astropy cannot parse
            results.append((path, None, f"unreadable header ({exc})", True))
    return results


def iso_to_mjd(date_text: str, time_text: str | None = None) -> float:
    """Convert an ISO date (and optional separate time) in UTC to MJD, without astropy.

    Parameters
    ----------
    date_text : str
        ``'YYYY-MM-DD'`` or a full ``'YYYY-MM-DDThh:mm:ss[.fff]'`` datetime.
    time_text : str, optional
        ``'hh:mm:ss[.fff]'``, used with the date part of ``date_text`` (ground-test data
        such as DATE-END + TIME-END, or DATE-OBS + TIME-OBS).

    Raises
    ------
    ValueError
        When the text is not such a date/time.
    """
    match = _DATE.fullmatch(date_text)
    if not match:
        raise ValueError(date_text)
    year, month, day, clock = match.groups()
    days = date(int(year), int(month), int(day)).toordinal() - _MJD_EPOCH
    if time_text is not None:
        clock = time_text
    if clock is None or not clock.strip():
        return float(days)
    parts = _TIME.fullmatch(clock.rstrip("Z"))
    if not parts:
        raise ValueError(clock)
    hours, minutes, seconds = int(parts[1]), int(parts[2]), float(parts[3] or 0.0)
    length = 86401.0 if days in LEAP_SECOND_DAYS else 86400.0
    if hours > 23 or minutes > 59 or seconds >= length - 86340.0:
        raise ValueError(clock)
    return days + (hours * 3600 + minutes * 60 + seconds) / length

"""One file's :class:`~refsmith.model.Exposure` from its primary-header values.

:class:`Describer` compiles the catalog options once per scan (the keywords to read, the
image-type rules, the time keywords) and builds each Exposure: set-up values, image
type, MJD, completed steps, or the reasons it is unusable. Used by
:mod:`refsmith.catalog.catalog`; pure (no file access).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from math import isfinite
from typing import TYPE_CHECKING, Any

from refsmith.catalog.classify import Classifier
from refsmith.catalog.headers import STEP_PREFIX, iso_to_mjd
from refsmith.detector1.keywords import KEYWORD_STEPS
from refsmith.detector1.steps import in_order
from refsmith.model import Exposure

if TYPE_CHECKING:
    from refsmith.catalog.options import CatalogOptions

STANDARD_READ = ("INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT", "SUBARRAY", "NGROUPS", "NINTS")


class Describer:
    """Catalog options compiled once per scan: which keywords to read, and how to describe
    a file from its header values."""

    def __init__(self, options: CatalogOptions) -> None:
        self.required = tuple(upper_keywords(options.required_keywords))
        self.time = options.time
        self.time_keywords = options.time.keywords()
        self.classifier = Classifier(options.type_rules)
        wanted = {*STANDARD_READ, *self.required, *upper_keywords(options.optional_keywords)}
        wanted.update(self.time_keywords, self.classifier.keywords)
        self.keywords = tuple(sorted(wanted))
        # What a cache row records as looked for (S_* cards are always read in full).
        self.key = ",".join((*self.keywords, STEP_PREFIX + "*"))
        self._covers: dict[str, bool] = {self.key: True}
        # Memos: most files of a scan share their set-up and their set of keywords.
        self.setup_keywords = tuple(
            sorted({*STANDARD_READ, *self.required, *self.classifier.keywords})
        )
        self._setups: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._step_keys: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}

    def covered_by(self, key: str) -> bool:
        """Whether a cache row that looked for ``key`` has every keyword needed now."""
        try:
            return self._covers[key]
        except KeyError:
            result = self._covers[key] = set(self.keywords) <= set(key.split(","))
            return result

    def exposure(
        self, path: str, info: os.stat_result, values: dict[str, Any] | None, error: str,
        name: str | None = None,
    ) -> Exposure:
        """Build the Exposure of one file from its header values (or its read error).

        ``name``: the name the file was given, when not its own (a symlink's): file-name
        rules classify by it. Unusable exposures (missing keyword, bad value, bad time) get
        ``imtype`` None.
        """
        if values is None:
            return Exposure(path, False, error, size=info.st_size, mtime_ns=info.st_mtime_ns,
                            ctime_ns=info.st_ctime_ns, inode=info.st_ino)
        get = values.get
        key = tuple(map(get, self.setup_keywords))
        memo_key = (key, tuple(map(type, key)))  # types too: True == 1, 5.0 == 5
        setup = self._setups.get(memo_key)
        if setup is None:
            setup = self._setup(values, path)
            if len(self._setups) < 20_000 and not self.classifier.uses_filename:
                self._setups[memo_key] = setup
        reasons, instrument, detector, exp_type, readpatt, subarray, ngroups, nints, imtype = setup
        mjd = get(self.time_keywords[0]) if self.time_keywords else None
        if type(mjd) is not float or not isfinite(mjd) or self.time.date:
            reasons = list(reasons)
            mjd = self._mjd(values, reasons)
        if self.classifier.uses_filename and not reasons:
            imtype = self.classifier(values, name or path)
        names = tuple(values)
        step_keys = self._step_keys.get(names)
        if step_keys is None:
            step_keys = tuple((k, KEYWORD_STEPS[k]) for k in names if k in KEYWORD_STEPS)
            if len(self._step_keys) < 1000:
                self._step_keys[names] = step_keys
        status: dict[str, str] = {}
        done: tuple[str, ...] = ()
        if step_keys:
            status = {step: str(values[k]).strip() for k, step in step_keys}
            done = in_order(
                [s for s, v in status.items() if v.upper() == "COMPLETE"], instrument
            )
        return Exposure(
            path, not reasons, "; ".join(reasons), None if reasons else imtype, instrument,
            detector, exp_type, readpatt, subarray, ngroups, nints, mjd, done, status, values,
            info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino,
        )

    def _setup(self, values: Mapping[str, Any], path: str) -> tuple[Any, ...]:
        """Everything of an Exposure that depends only on the set-up keywords."""
        reasons = [f"missing {k}" for k in self.required if values.get(k) is None]
        ngroups = _positive_integer(values, "NGROUPS", reasons)
        nints = _positive_integer(values, "NINTS", reasons)
        imtype = None if self.classifier.uses_filename else self.classifier(values, path)
        return (
            tuple(reasons),
            *(_text(values.get(k)) for k in ("INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT",
                                            "SUBARRAY")),
            ngroups,
            nints,
            imtype,
        )

    def _mjd(self, values: Mapping[str, Any], reasons: list[str]) -> float | None:
        """The exposure's MJD, or None with the reason appended to ``reasons``."""
        if not self.time_keywords:
            return None
        first = self.time_keywords[0]
        value = values.get(first)
        if value is None:
            reasons.append(f"missing {first} (time)")
            return None
        if not self.time.date:
            return _finite(first, value, reasons)
        clock = None
        if len(self.time_keywords) > 1:
            clock = values.get(self.time_keywords[1])
            if clock is None:
                reasons.append(f"missing {self.time_keywords[1]} (time)")
                return None
        try:
            return iso_to_mjd(str(value), None if clock is None else str(clock))
        except ValueError:
            shown = f"{first} = {value!r}"
            if clock is not None:
                shown += f", {self.time_keywords[1]} = {clock!r}"
            reasons.append(f"{shown} is not an ISO date/time")
            return None


def upper_keywords(keywords: Sequence[str]) -> list[str]:
    """Keyword names as the headers hold them (stripped, upper case)."""
    return [k.strip().upper() for k in keywords]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.strip().upper() if type(value) is str else str(value).strip().upper()


def _positive_integer(values: Mapping[str, Any], keyword: str,
                      reasons: list[str]) -> int | None:
    """``keyword``'s value as an integer above 0; None (absent, or a reason appended)."""
    value = _integer(values, keyword, reasons)
    if value is not None and value < 1:
        reasons.append(f"{keyword} = {value} is not a positive integer")
        return None
    return value


def _integer(values: Mapping[str, Any], keyword: str, reasons: list[str]) -> int | None:
    value = values.get(keyword)
    if value is None or type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        reasons.append(f"{keyword} = {value!r} is not an integer")
        return None


def _finite(keyword: str, value: Any, reasons: list[str]) -> float | None:
    """``value`` (of ``keyword``, a time) as a finite float; None with a reason if not."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        try:
            number = float(str(value))
        except ValueError:
            reasons.append(f"{keyword} = {value!r} is not a number")
            return None
    if not isfinite(number):
        reasons.append(f"{keyword} = {value!r} is not a finite number")
        return None
    return number

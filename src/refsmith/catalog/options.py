"""What to catalog and how: the basename pattern, the keywords to read, where the time is,
the image-type rules, the header cache, the reader processes (:class:`CatalogOptions`).

Plain data, built by :func:`refsmith.plan.catalog_options` from the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from refsmith.catalog.classify import DEFAULT_RULES, TypeRule
from refsmith.errors import ConfigError


@dataclass(frozen=True)
class TimeSpec:
    """Where the observation time is in the header.

    ``mjd``: a keyword holding an MJD number (default EXPSTART). ``date``: a keyword with
    a full ISO datetime (DATE-END ``'2022-06-01T12:00:00.000'``), or, with ``time``, a
    date + time pair (DATE-OBS + TIME-OBS; ground-test DATE-END + TIME-END). When
    ``date`` is set it is used and ``mjd`` is ignored. Times are UTC.
    """

    mjd: str | None = "EXPSTART"
    date: str | None = None
    time: str | None = None

    def __post_init__(self) -> None:
        if self.time and not self.date:
            raise ConfigError(f"time keyword {self.time!r} needs a date keyword too")

    def keywords(self) -> tuple[str, ...]:
        """The header keywords this spec reads (upper case)."""
        if self.date:
            return tuple(k.strip().upper() for k in (self.date, self.time) if k)
        return (self.mjd.strip().upper(),) if self.mjd else ()


@dataclass(frozen=True)
class CatalogOptions:
    """What to catalog and how (see :func:`scan`)."""

    pattern: str | None = r"_uncal\.fits$"
    required_keywords: tuple[str, ...] = (
        "INSTRUME", "DETECTOR", "READPATT", "SUBARRAY", "NGROUPS", "NINTS",
    )
    optional_keywords: tuple[str, ...] = ()
    time: TimeSpec = TimeSpec()
    type_rules: tuple[TypeRule, ...] = DEFAULT_RULES
    cache: Path | None = None
    workers: int | None = None

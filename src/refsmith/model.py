"""Frozen records that flow between stages: catalog -> groups -> plan.

These are plain data; the functions that build them live in ``catalog``, ``grouping`` and
``planning``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any

from refsmith.util.record import record

# Attributes of Exposure that correspond to a primary-header keyword.
STANDARD_KEYWORDS: dict[str, str] = {
    "INSTRUME": "instrument",
    "DETECTOR": "detector",
    "EXP_TYPE": "exp_type",
    "READPATT": "readpatt",
    "SUBARRAY": "subarray",
    "NGROUPS": "ngroups",
    "NINTS": "nints",
}


@record
class Exposure:
    """One input file as the catalog sees it (primary header only).

    Attributes
    ----------
    path : str
        Absolute path with symlinks resolved (the identity of the file).
    usable : bool
        False when the file cannot take part in any group; ``reason`` says why.
    reason : str
        Why the file is unusable ('' when usable).
    imtype : str or None
        Image type name from classification ('dark', 'flat', or a user-defined one);
        None when no rule matched (unclassified, still usable for nothing).
    mjd : float or None
        Observation time as MJD, from the configured time keyword(s).
    step_status : mapping
        calwebb_detector1 step name -> 'COMPLETE' / 'SKIPPED' / 'FAILED' for every S_*
        keyword present in the header (absent keyword = step not run).
    completed_steps : tuple of str
        Steps whose S_* keyword is COMPLETE, in the instrument's pipeline order.
    keywords : mapping
        FITS keyword -> value for every keyword read (standard, required, optional, time).
    size, mtime_ns, ctime_ns, inode : int
        The file's metadata when it was scanned (see :attr:`identity`).
    """

    path: str
    usable: bool
    reason: str = ""
    imtype: str | None = None
    instrument: str | None = None
    detector: str | None = None
    exp_type: str | None = None
    readpatt: str | None = None
    subarray: str | None = None
    ngroups: int | None = None
    nints: int | None = None
    mjd: float | None = None
    completed_steps: tuple[str, ...] = ()
    step_status: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    keywords: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    inode: int = 0

    @property
    def identity(self) -> dict[str, int]:
        """The file's metadata identity when it was scanned (:mod:`refsmith.util.identity`)."""
        return {"size": self.size, "mtime_ns": self.mtime_ns, "ctime_ns": self.ctime_ns,
                "inode": self.inode}

    def value(self, keyword: str) -> Any:
        """Return the header value of ``keyword`` (upper case FITS name), or None."""
        keyword = keyword.upper()
        if keyword in STANDARD_KEYWORDS:
            return getattr(self, STANDARD_KEYWORDS[keyword])
        return self.keywords.get(keyword)

    @property
    def name(self) -> str:
        """The file's base name."""
        return self.path.rsplit("/", 1)[-1]


@record
class Member:
    """One exposure in a group, with its role (D1, D2, F1, ...)."""

    role: str
    path: str


@record
class Group:
    """The inputs of one individual reference file.

    ``partition`` holds the (keyword, value) pairs every member shares; ``rule`` the rule
    values that formed the group (imtypes, max_days used, reuse, min_size...).
    """

    id: str
    recipe: str
    reftype: str
    imtypes: str
    partition: tuple[tuple[str, Any], ...]
    members: tuple[Member, ...]
    mjd_span: tuple[float, float]
    rule: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(m.path for m in self.members)


@record
class Leftover:
    """A candidate of a recipe that ended up in no group, and why."""

    recipe: str
    path: str
    reason: str

"""A recipe's grouping rule (:class:`GroupingRule`): plain data, validated on creation.

What one group holds (``imtypes``), the keywords its members share, the time spans allowed,
the smallest group, whether partners may be reused, and which exposures may take part. See
docs/grouping.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from refsmith.errors import ConfigError
from refsmith.grouping.imtypes import (
    DEFAULT_LETTERS,
    Part,
    canonical_limits,
    order_parts,
    parse_imtypes,
)

DEFAULT_GROUP_BY: tuple[str, ...] = ("DETECTOR", "SUBARRAY", "READPATT")


@dataclass(frozen=True)
class GroupingRule:
    """How one recipe groups its exposures (plain data; validated on creation).

    Attributes
    ----------
    recipe, reftype : str
        Recipe name (first part of every group id) and the reference file type it makes.
    imtypes : str
        What one group holds, in the ``parse_imtypes`` grammar: ``'DD'``, ``'D+'``,
        ``'DDFF'``, ``'DF+'`` ...
    group_by : tuple of str
        FITS keywords every member of a group shares (the partition).
    max_days : mapping
        imtypes string -> largest time span in days allowed (inclusive); any equivalent
        spelling of a key works (``'FFDD'`` for ``'DDFF'``). A key that is absent, or
        None, means no limit. Keys the recipe does not use are ignored.
    min_size : int
        Groups with fewer members are dropped (their members get a reason).
    reuse : bool
        Whether one partner subgroup (e.g. the dark pair of a ``DDFF`` recipe) may serve
        several groups.
    select : mapping
        FITS keyword -> allowed values (case-insensitive, shell-style wildcards).
    letters : mapping
        imtypes letter -> image type name, in canonical order (``D`` before ``F``).
    """

    recipe: str
    reftype: str
    imtypes: str
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    max_days: Mapping[str, float | None] = field(default_factory=dict, hash=False)
    min_size: int = 1
    reuse: bool = True
    select: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    letters: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LETTERS), hash=False)
    _limits: Mapping[str, float] = field(init=False, repr=False, compare=False, hash=False,
                                         default_factory=dict)

    def __post_init__(self) -> None:
        where = f"recipe {self.recipe!r}"
        group_by = (self.group_by,) if isinstance(self.group_by, str) else self.group_by
        object.__setattr__(self, "group_by", tuple(str(k).strip().upper() for k in group_by))
        object.__setattr__(self, "letters", MappingProxyType(dict(self.letters)))
        max_days = _check_max_days(self.max_days, where)
        object.__setattr__(self, "max_days", MappingProxyType(max_days))
        object.__setattr__(self, "select", MappingProxyType(_check_select(self.select, where)))
        size = self.min_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"{where}: min_size must be a whole number >= 1, got {size!r}")
        if not isinstance(self.reuse, bool):
            raise ConfigError(f"{where}: reuse must be true or false, got {self.reuse!r}")
        try:
            self.parts()
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        limits = canonical_limits(max_days, self.letters, where)
        object.__setattr__(self, "_limits", MappingProxyType(limits))

    def parts(self) -> tuple[Part, ...]:
        """The recipe's image types in canonical (letter table) order."""
        return order_parts(parse_imtypes(self.imtypes, self.letters), self.letters,
                           self.imtypes)

    def max_days_limit(self, key: str) -> float | None:
        """The max_days limit of a canonical imtypes key (None: no limit)."""
        return self._limits.get(key)


def _check_max_days(max_days: Mapping[str, Any], where: str) -> dict[str, float | None]:
    checked: dict[str, float | None] = {}
    for key, value in dict(max_days or {}).items():
        name = str(key).strip().upper()
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and not (number and math.isfinite(value) and value >= 0):
            raise ConfigError(f"{where}: max_days[{name!r}] must be a number of days >= 0 "
                              f"(or absent for no limit), got {value!r}")
        checked[name] = None if value is None else float(value)
    return checked


def _check_select(select: Mapping[str, Any], where: str) -> dict[str, tuple[str, ...]]:
    checked: dict[str, tuple[str, ...]] = {}
    for key, values in dict(select or {}).items():
        allowed = (values,) if isinstance(values, str) else tuple(values)
        if not allowed:
            raise ConfigError(f"{where}: select {key!r} lists no values; give at least one")
        checked[str(key).strip().upper()] = tuple(str(v).strip() for v in allowed)
    return checked

"""The ``imtypes`` grammar of recipes and the shape it describes.

``parse_imtypes`` reads ``DD``, ``D+``, ``DDFF``, ``DF+``...; :class:`Part` is one image
type of a shape (its letter, type name and count); canonical spellings (``FFDD`` ->
``DDFF``) key the ``max_days`` limits. The grammar only: used by the rule
(:mod:`refsmith.grouping.rule`), the shapes and the config's checks; see docs/grouping.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from refsmith.errors import ConfigError

DEFAULT_LETTERS: dict[str, str] = {"D": "dark", "F": "flat"}

_TOKEN = re.compile(r"([A-Z])(\+|)")


def parse_imtypes(text: str, letters: Mapping[str, str] = DEFAULT_LETTERS) -> dict[str, int | None]:
    """Parse an ``imtypes`` string into image type -> count (None = all, from ``X+``).

    Grammar: for each letter, either a run of that letter (``DD`` = 2 darks) or the
    letter followed by ``+`` (all exposures of that type); letters may come in any order
    but each letter only once as a run (``DDFF`` = ``FFDD``, ``DF+`` = ``D+F+``).
    A trailing ``+`` after several letters applies to each of them (``DF+``).

    Parameters
    ----------
    text : str
        The imtypes string from a recipe, e.g. ``'DD'``, ``'D+'``, ``'DDFF'``, ``'DF+'``.
    letters : mapping
        Letter -> image type name for the types the classification defines.

    Returns
    -------
    dict
        Image type name -> number of exposures (int >= 1) or None for "all".

    Raises
    ------
    ConfigError
        On anything else, with a message naming the offending part.
    """
    raw = str(text).strip()
    if not raw:
        raise ConfigError("imtypes is empty; expected e.g. 'DD', 'D+', 'DDFF' or 'DF+'")
    known = ", ".join(f"{k}={v}" for k, v in sorted(letters.items()))
    # 'DF+' (several distinct letters then one '+') means every listed type, all of each.
    if re.fullmatch(r"[A-Z]{2,}\+", raw) and len(set(raw[:-1])) == len(raw) - 1:
        raw = "".join(f"{c}+" for c in raw[:-1])
    result: dict[str, int | None] = {}
    position = 0
    while position < len(raw):
        match = _TOKEN.match(raw, position)
        if not match:
            raise ConfigError(
                f"imtypes {text!r}: unexpected {raw[position:]!r}; use letters ({known}), "
                "each repeated once per exposure or followed by '+'"
            )
        letter, plus = match.groups()
        if letter not in letters:
            raise ConfigError(f"imtypes {text!r}: unknown letter {letter!r}; known: {known}")
        name = letters[letter]
        end = match.end()
        count = 1
        if not plus:
            while end < len(raw) and raw[end] == letter:
                count += 1
                end += 1
            if end < len(raw) and raw[end] == "+":
                raise ConfigError(
                    f"imtypes {text!r}: '{letter * count}+' mixes a count and '+'; "
                    f"write '{letter * count}' or '{letter}+'"
                )
        if name in result:
            raise ConfigError(
                f"imtypes {text!r}: letter {letter!r} appears in two places; write all "
                f"{name}s together (e.g. 'DDFF', not 'DFDF')"
            )
        result[name] = None if plus else count
        position = end
    if len({count is None for count in result.values()}) > 1:
        raise ConfigError(
            f"imtypes {text!r} mixes counted types and '+' types; use counts for every type "
            "('DDFF') or '+' for every type ('DF+')"
        )
    return result


@dataclass(frozen=True)
class Part:
    """One image type of a recipe: ``D`` x2 in ``DDFF``, or ``F`` x all in ``DF+``."""

    letter: str
    name: str
    count: int | None  # None: all of them ('+')

    @property
    def key(self) -> str:
        """max_days key of this type's own subgroups ('DD', 'FFF')."""
        return self.letter * (self.count or 1)


def order_parts(counts: Mapping[str, int | None], letters: Mapping[str, str], written: str
                ) -> tuple[Part, ...]:
    """The parts of a parsed imtypes (``counts``, as written in ``written``) in canonical
    (letter table) order."""
    return tuple(
        Part(letter, name, counts[name])
        for letter, name in letters.items()
        if name in counts and letter in written
    )


def canonical_imtypes(parts: Sequence[Part]) -> str:
    """imtypes in canonical order: 'FFDD' -> 'DDFF', 'F+D+' -> 'DF+'."""
    if parts[0].count is None:
        return "".join(p.letter for p in parts) + "+"
    return "".join(p.letter * (p.count or 1) for p in parts)


def canonical_limits(max_days: Mapping[str, float | None], letters: Mapping[str, str],
                     where: str) -> dict[str, float]:
    """max_days keyed by canonical imtypes ('FFDD' -> 'DDFF'); unset limits dropped. Keys
    that are no imtypes of these letters are kept as they are (a recipe never asks)."""
    limits: dict[str, float] = {}
    spelled: dict[str, str] = {}
    for key, value in max_days.items():
        if value is None:
            continue
        try:
            canonical = canonical_imtypes(order_parts(parse_imtypes(key, letters), letters, key))
        except ConfigError:
            canonical = key
        if canonical in limits and limits[canonical] != value:
            raise ConfigError(f"{where}: max_days {spelled[canonical]!r} and {key!r} mean the "
                              f"same ({canonical}) but differ ({limits[canonical]} vs "
                              f"{value}); keep one")
        limits[canonical], spelled[canonical] = value, key
    return limits


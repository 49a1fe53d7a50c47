"""Group construction: which exposures make one individual reference file.

See docs/grouping.md for the exact semantics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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

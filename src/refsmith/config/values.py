"""The value types and checks of config sections.

Key paths (:data:`Loc`), several problems carried in one pydantic error
(:func:`problems_error`, unpacked by :mod:`refsmith.config.loading`), FITS keywords, string
lists, regular expressions, memory sizes, durations and step lists.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    PositiveFloat,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from refsmith.detector1.keywords import STEP_ALIASES, STEP_KEYWORDS, canonical_step
from refsmith.errors import ConfigError
from refsmith.util.memory import parse_memory

Loc = tuple[str | int, ...]

PROBLEMS_ERROR = "refsmith_problems"
_FITS_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ------------------------------------------------------------------ value helpers


def problems_error(problems: Sequence[tuple[Loc, str]]) -> PydanticCustomError:
    """One pydantic error carrying several (relative key path, message) problems."""
    summary = "; ".join(f"{'.'.join(map(str, loc))}: {msg}" if loc else msg
                        for loc, msg in problems)
    return PydanticCustomError(PROBLEMS_ERROR, "{summary}",
                               {"summary": summary, "problems": list(problems)})


def _fits_keyword(value: Any) -> str:
    text = str(value).strip().upper()
    if not _FITS_KEYWORD.fullmatch(text):
        raise ValueError(f"{value!r} is not a FITS keyword (1-8 characters of A-Z 0-9 - _)")
    return text


def string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = list(value)
        if all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in items):
            return [str(v) for v in items]
    raise ValueError(f"expected a string or a list of strings, got {value!r}")


def regex_text(value: Any) -> Any:
    if value is None:
        return None
    try:
        re.compile(str(value))
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return str(value)


def memory_size(value: Any, info: ValidationInfo) -> Any:
    """A memory size such as ``4GiB`` (kept as written; :func:`parse_memory` reads it)."""
    if value is None:
        return None
    try:
        size = parse_memory(str(value), str(info.field_name))
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    if not size:
        raise ValueError(f"{info.field_name} must be more than 0, got {value!r}")
    return str(value).strip()


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h|d)?")
_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _duration(value: Any, info: ValidationInfo) -> Any:
    """A time limit in seconds: a number, or text with a unit (``90s``, ``30min``, ``2h``,
    ``1d``); ``none`` = no limit (0). Passed through as None (unset) when it is None."""
    return None if value is None else parse_duration(value, str(info.field_name))


def parse_duration(value: Any, name: str) -> float:
    """Seconds of a duration (see :func:`_duration`; ``none`` -> 0.0); ValueError naming
    ``name`` when it is not one."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be seconds or a duration such as 30min or 2h, "
                         f"got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if text == "none":
            return 0.0
        match = _DURATION.fullmatch(text)
        if not match:
            raise ValueError(f"{name} must be seconds or a duration such as 30min or 2h "
                             f"(or none), got {value!r}")
        seconds = float(match[1]) * _SECONDS[match[2]]
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{name} must be more than 0 seconds (none = no limit), "
                         f"got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(_duration)]


def suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def step_tokens(value: Any, *, shorthand: bool, extras: Sequence[str] = ()) -> list[str]:
    """Split a step list (string with commas/spaces, or list) into canonical names."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else string_list(value)
    known = [*STEP_KEYWORDS, *STEP_ALIASES, *extras]
    tokens, bad = [], []
    for item in items:
        for part in str(item).replace(",", " ").split():
            minus = shorthand and part.endswith("-")
            name = part[:-1] if minus else part
            if name.lower() in extras:
                tokens.append(name.lower())
                continue
            try:
                tokens.append(canonical_step(name) + ("-" if minus else ""))
            except ConfigError:
                hint = suggest(name.lower(), known)
                bad.append(f"unknown calwebb_detector1 step {name!r}{hint}")
    if bad:
        raise ValueError("; ".join(bad))
    return tokens


FitsKeyword = Annotated[str, BeforeValidator(_fits_keyword)]
StringList = Annotated[list[str], BeforeValidator(string_list)]
KeywordList = Annotated[list[FitsKeyword], BeforeValidator(string_list)]


def _upper_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k).strip().upper(): v for k, v in value.items()}
    return value


MaxDays = Annotated[dict[str, PositiveFloat], BeforeValidator(_upper_keys)]

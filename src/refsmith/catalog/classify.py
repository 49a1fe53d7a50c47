"""Image-type rules: which exposures are darks, flats, ... (classification is data).

The default table maps the primary-header EXP_TYPE of all five JWST instruments to the
two image types of detector-level reference files: ``dark`` (D) and ``flat`` (F, any
exposure with the detector uniformly illuminated by an internal lamp). Every EXP_TYPE in
it is tested to exist in the installed stdatamodels ``keyword_exptype`` schema enum.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from refsmith.errors import ConfigError


@dataclass(frozen=True)
class TypeRule:
    """One image type and how to recognise it.

    An exposure is of this type when every keyword in ``match`` has one of the listed
    values (case-insensitive; shell-style wildcards allowed) and, when ``pattern`` is set,
    its base name matches that regular expression (``re.search``).
    """

    name: str                      # 'dark', 'flat', or user-defined ('bias', ...)
    letter: str                    # one upper-case letter used in imtypes ('D', 'F', 'B')
    match: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    pattern: str | None = None


DARK_EXP_TYPES: tuple[str, ...] = (
    "NRC_DARK",      # NIRCam
    "NIS_DARK",      # NIRISS
    "NRS_DARK",      # NIRSpec
    "MIR_DARKIMG",   # MIRI imager (MIRIMAGE)
    "MIR_DARKMRS",   # MIRI MRS (MIRIFUSHORT / MIRIFULONG)
    "MIR_DARKALL",   # MIRI, all three detectors
    "FGS_DARK",      # FGS
)
FLAT_EXP_TYPES: tuple[str, ...] = (
    "NRC_FLAT",      # NIRCam internal flat
    "NRC_LED",       # NIRCam LED lamp (used for flats, gain, linearity)
    "NIS_LAMP",      # NIRISS internal lamp (there is no NIS_FLAT EXP_TYPE)
    "NRS_LAMP",      # NIRSpec internal lamp
    "MIR_FLATIMAGE",  # MIRI imager internal flat
    "MIR_FLATMRS",   # MIRI MRS internal flat
    "FGS_INTFLAT",   # FGS internal flat
)
# Deliberately left out (configure them in ``classify`` when wanted):
# - *_FOCUS (NRC, NIS, NRS, FGS): focus sweeps; defocused scenes, not darks or flats.
# - NRS_AUTOFLAT, NRS_AUTOWAVE: lamp exposures through a science MSA configuration
#   (dispersed light through open shutters), not a uniformly illuminated detector.
# - MIR_FLATIMAGE-EXT, MIR_FLATMRS-EXT, FGS_SKYFLAT, NIS_EXTCAL: sky / external-source
#   flats, with astronomical signal.
# - NIS_FLAT, NRS_FLAT, MIR_FLAT: not in the stdatamodels EXP_TYPE enum (jwst 3.0).

DEFAULT_RULES: tuple[TypeRule, ...] = (
    TypeRule("dark", "D", {"EXP_TYPE": DARK_EXP_TYPES}),
    TypeRule("flat", "F", {"EXP_TYPE": FLAT_EXP_TYPES}),
)


def normalize(value: Any) -> str:
    """A header value as compared by rules: str, stripped, upper case (T/F for bools)."""
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value).strip().upper()


@dataclass(frozen=True)
class _CompiledRule:
    name: str
    checks: tuple[tuple[str, frozenset[str], re.Pattern[str] | None], ...]
    pattern: re.Pattern[str] | None


class Classifier:
    """Rules compiled once for classifying many exposures (first matching rule wins)."""

    def __init__(self, rules: Sequence[TypeRule]) -> None:
        compiled = []
        for rule in rules:
            if not rule.match and not rule.pattern:
                continue  # a rule with neither matches nothing
            checks = []
            for keyword, values in rule.match.items():
                listed = (values,) if isinstance(values, str) else tuple(values)
                exact = frozenset(normalize(v) for v in listed if not _has_wildcard(v))
                wild = [fnmatch.translate(normalize(v)) for v in listed if _has_wildcard(v)]
                regex = re.compile("|".join(wild)) if wild else None
                checks.append((keyword.strip().upper(), exact, regex))
            pattern = re.compile(rule.pattern) if rule.pattern else None
            compiled.append(_CompiledRule(rule.name, tuple(checks), pattern))
        self._rules = tuple(compiled)
        self.keywords: tuple[str, ...] = tuple(
            sorted({kw for rule in self._rules for kw, _, _ in rule.checks})
        )
        self.uses_filename = any(rule.pattern for rule in self._rules)
        self._memo: dict[tuple[Any, ...], str | None] = {}

    def __call__(self, keywords: Mapping[str, Any], filename: str) -> str | None:
        """The image type of an exposure, or None when no rule matches."""
        if self.uses_filename:
            return self._classify(keywords, filename)
        key = tuple(keywords.get(kw) for kw in self.keywords)
        try:
            return self._memo[key]
        except (KeyError, TypeError):  # TypeError: an unhashable value
            result = self._classify(keywords, filename)
            # Memoise only plain strings (True == 1 would share a key with a different text).
            if len(self._memo) < 4096 and all(type(v) is str or v is None for v in key):
                self._memo[key] = result
            return result

    def _classify(self, keywords: Mapping[str, Any], filename: str) -> str | None:
        base = filename.rsplit("/", 1)[-1]
        for rule in self._rules:
            if rule.pattern is not None and not rule.pattern.search(base):
                continue
            if all(_check(keywords.get(kw), exact, wild) for kw, exact, wild in rule.checks):
                return rule.name
        return None


def _has_wildcard(value: Any) -> bool:
    return isinstance(value, str) and any(c in value for c in "*?[")


def _check(value: Any, exact: frozenset[str], wild: re.Pattern[str] | None) -> bool:
    if value is None:
        return False
    text = normalize(value)
    return text in exact or (wild is not None and wild.match(text) is not None)


@lru_cache(maxsize=32)
def _classifier(rules: tuple[TypeRule, ...]) -> Classifier:
    return Classifier(rules)


def classify(keywords: Mapping[str, Any], filename: str, rules: Sequence[TypeRule]) -> str | None:
    """Return the image type of an exposure, or None when no rule matches.

    Parameters
    ----------
    keywords : mapping
        Upper-case FITS keyword -> header value.
    filename : str
        The file's name or path; rules with a ``pattern`` search its base name.
    rules : sequence of TypeRule
        Tried in order; the first matching rule wins. Values are compared stripped and
        case-insensitively, with shell-style wildcards (``MIR_DARK*``). A rule with
        neither ``match`` nor ``pattern`` matches nothing.

    Returns
    -------
    str or None
        The matching rule's ``name``.
    """
    try:
        classifier = _classifier(tuple(rules))
    except TypeError:  # unhashable rule contents: compile without the cache
        classifier = Classifier(rules)
    return classifier._classify(keywords, filename)


def letters(rules: Sequence[TypeRule]) -> dict[str, str]:
    """Map each rule's imtypes letter to its image type name.

    Raises
    ------
    ConfigError
        When one letter is used for two different image types, or is not a single
        upper-case letter.
    """
    result: dict[str, str] = {}
    for rule in rules:
        if len(rule.letter) != 1 or not ("A" <= rule.letter <= "Z"):
            raise ConfigError(
                f"image type {rule.name!r}: letter {rule.letter!r} must be one upper-case letter"
            )
        known = result.setdefault(rule.letter, rule.name)
        if known != rule.name:
            raise ConfigError(
                f"letter {rule.letter!r} is used for two image types: {known!r} and {rule.name!r}"
            )
    return result

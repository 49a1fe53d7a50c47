"""The top-level :class:`Config` model: the whole config file, and the values derived from it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from refsmith.catalog.classify import TypeRule
from refsmith.config.sections import (
    Execution,
    Inputs,
    Output,
    Pipeline,
    Recipe,
    Report,
    Section,
    TypeRuleConfig,
)
from refsmith.config.values import IDENTIFIER, KeywordList, Loc, MaxDays, problems_error
from refsmith.config.variables import expand_variables
from refsmith.detector1.keywords import normalize_instrument as _normalize_instrument
from refsmith.detector1.steps import expand_steps
from refsmith.errors import ConfigError

# ------------------------------------------------------------------ the config


def _default_rules() -> tuple[TypeRule, ...]:
    """The built-in classification table (:data:`refsmith.catalog.classify.DEFAULT_RULES`)."""
    from refsmith.catalog.classify import DEFAULT_RULES

    return tuple(DEFAULT_RULES)


class Config(Section):
    """A validated refsmith configuration.

    Build one with :func:`load_config`, :func:`parse_config` or :func:`default_config`;
    relative paths in it are relative to :attr:`base_dir` (see :meth:`resolve`).
    """

    instrument: str | None = None
    """The instrument (nircam, niriss, nirspec, miri, fgs): only its exposures are used (every
    recipe gets `select: {INSTRUME: [<instrument>]}`, so the others are leftovers with that
    reason) and step names are checked for it at load time. Optional: without it, every
    instrument in the inputs is planned, each with its own steps.
    """
    inputs: Inputs = Inputs()
    """Which files to read and which header keywords matter."""
    classify: dict[str, TypeRuleConfig] | None = None
    """Image-type rules by name (`dark`, `flat`, or your own such as `bias`); replace or extend the
    built-in EXP_TYPE table.
    """
    classify_defaults: bool = True
    """Start from the built-in EXP_TYPE table (darks and flats of all five instruments); false =
    only the rules given in `classify`.
    """
    group_by: KeywordList = Field(default_factory=lambda: ["DETECTOR", "SUBARRAY", "READPATT"])
    """Keywords the members of a group must share."""
    max_days: MaxDays = Field(default_factory=dict)
    """Largest time span (days) allowed within a group, by imtypes: `DD`, `FF`, `DDFF`
    (dark-to-flat), `D+` (splits into clusters)...
    """
    output: Output = Output()
    """Where results go."""
    pipeline: Pipeline = Pipeline()
    """How the JWST pipeline is run."""
    execution: Execution = Execution()
    """Where and how jobs run."""
    recipes: dict[str, Recipe] = Field(default_factory=dict)
    """One recipe per kind of individual reference file to make."""
    report: Report = Report()
    """What the report compares the final files with."""

    _source: str = PrivateAttr("<string>")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _legacy: bool = PrivateAttr(False)
    _notices: list[str] = PrivateAttr(default_factory=list)

    @field_validator("instrument", mode="before")
    @classmethod
    def _instrument(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return _normalize_instrument(str(value))
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Config:
        problems: list[tuple[Loc, str]] = []
        for name in self.classify or {}:
            if not IDENTIFIER.fullmatch(name):
                problems.append((("classify", name), "image type names are identifiers "
                                 "(letters, digits, _), e.g. dark, flat, bias"))
        try:
            letters = {rule.letter: rule.name for rule in self.type_rules()}
        except ConfigError as exc:
            problems.append((("classify",), str(exc)))
            letters = {}
        if not self.recipes and not (info.context or {}).get("allow_no_recipes"):
            problems.append((("recipes",), "no recipes: add at least one under 'recipes:' "
                             "(refsmith init writes an example)"))
        for key in self.max_days:
            problems += self._imtypes_problem(("max_days", key), key, letters)
        for name, recipe in self.recipes.items():
            if not IDENTIFIER.fullmatch(name):
                problems.append((("recipes", name), "recipe names are identifiers "
                                 "(letters, digits, _), e.g. readnoise, bad_pixel_mask"))
            if recipe.reftype is None:
                recipe.reftype = name
            problems += self._imtypes_problem(("recipes", name, "imtypes"),
                                              recipe.imtypes, letters)
            for key in recipe.max_days or {}:
                problems += self._imtypes_problem(("recipes", name, "max_days", key),
                                                  key, letters)
            if self.instrument and recipe.steps:
                try:
                    expand_steps(recipe.steps, self.instrument)
                except ConfigError as exc:
                    problems.append((("recipes", name, "steps"), str(exc)))
            if self.instrument:
                problems += self._select_instrument(name, recipe)
        if problems:
            raise problems_error(problems)
        return self

    def _select_instrument(self, name: str, recipe: Recipe) -> list[tuple[Loc, str]]:
        """Restrict recipe ``name`` to the config's instrument (``select: {INSTRUME: ...}``);
        a problem if its own ``select`` on INSTRUME excludes that instrument."""
        instrument = str(self.instrument)
        own = recipe.select.get("INSTRUME")
        if own is not None and not any(fnmatchcase(instrument, str(pattern).strip().upper())
                                       for pattern in own):
            return [(("recipes", name, "select", "INSTRUME"),
                     f"selects {', '.join(map(str, own))} but the config's instrument is "
                     f"{instrument}; change one of them (or remove 'instrument:' to plan "
                     "several instruments)")]
        recipe.select = {**recipe.select, "INSTRUME": [instrument]}
        return []

    @staticmethod
    def _imtypes_problem(loc: Loc, text: str, letters: Mapping[str, str]
                         ) -> list[tuple[Loc, str]]:
        if not letters:
            return []
        from refsmith.grouping.imtypes import parse_imtypes

        try:
            parse_imtypes(text, letters)
        except ConfigError as exc:
            return [(loc, str(exc))]
        return []

    # -------------------------------------------------------------- derived values

    @property
    def source(self) -> str:
        """The config file's path, or ``<string>`` / ``<defaults>``."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the config are relative to."""
        return self._base_dir

    @property
    def legacy(self) -> bool:
        """True when translated from a jwst_reffiles ``mkrefs.cfg``."""
        return self._legacy

    @property
    def notices(self) -> list[str]:
        """What the legacy translation changed or ignored, for the user to read."""
        return self._notices

    def type_rules(self) -> tuple[TypeRule, ...]:
        """The image-type rules: defaults, replaced or extended by ``classify``.

        User rules replace default rules of the same name and new names are appended;
        with ``classify_defaults: false`` only the user rules are used.

        Raises
        ------
        ConfigError
            When two rules use the same letter.
        """
        rules: dict[str, TypeRule] = {}
        if self.classify_defaults:
            rules = {rule.name: rule for rule in _default_rules()}
        for name, rule in (self.classify or {}).items():
            rules[name] = rule.to_rule(name)
        seen: dict[str, str] = {}
        for rule in rules.values():
            if rule.letter in seen:
                raise ConfigError(
                    f"image types {seen[rule.letter]!r} and {rule.name!r} both use letter "
                    f"{rule.letter!r}; give one of them another 'letter:'"
                )
            seen[rule.letter] = rule.name
        return tuple(rules.values())

    def recipe_group_by(self, name: str) -> list[str]:
        """The keywords recipe ``name`` partitions by (its own, else the top level)."""
        recipe = self.recipes[name]
        return list(recipe.group_by if recipe.group_by is not None else self.group_by)

    def recipe_max_days(self, name: str) -> dict[str, float]:
        """Time limits of recipe ``name``: its own ``max_days`` merged over the top level."""
        return {**self.max_days, **(self.recipes[name].max_days or {})}

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """Expand ``~`` and ``$VARIABLES`` in ``path`` and make it absolute.

        Parameters
        ----------
        path : str or path-like
            A path from the config or the command line; relative paths are taken
            relative to :attr:`base_dir`.

        Returns
        -------
        Path
            An absolute, normalised path.

        Raises
        ------
        ConfigError
            When an environment variable used in ``path`` is not set.
        """
        text = expand_variables(os.fspath(path), where=f"{self.source}: {os.fspath(path)!r}")
        result = Path(text).expanduser()
        if not result.is_absolute():
            result = Path(self.base_dir).absolute() / result
        return Path(os.path.normpath(result))

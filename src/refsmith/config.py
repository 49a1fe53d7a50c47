"""The refsmith configuration: pydantic models, YAML loading, line-precise errors.

A config is a YAML file (see :data:`EXAMPLE_CONFIG`); a legacy ``jwst_reffiles``
``mkrefs.cfg`` is recognised and translated by :mod:`refsmith.legacy`. Every problem is
reported as a :class:`~refsmith.errors.ConfigError` naming the file, the line and the key
path, all problems at once, one per line.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from refsmith.classify import TypeRule
from refsmith.errors import ConfigError
from refsmith.steps import STEP_ALIASES, STEP_KEYWORDS, canonical_step, expand_steps
from refsmith.steps import normalize_instrument as _normalize_instrument

__all__ = [
    "EXAMPLE_CONFIG", "Config", "Execution", "Inputs", "Output", "Pipeline", "Recipe",
    "TimeKeys", "TypeRuleConfig", "default_config", "load_config", "parse_config",
    "write_example",
]

Loc = tuple[str | int, ...]
_PROBLEMS = "refsmith_problems"
_FITS_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MEMORY = re.compile(r"\d+(\.\d+)?\s*([KMGTP]i?B?|B)?", re.IGNORECASE)
SAVE_STEP_EXTRAS = ("fitopt",)  # save_steps values that are not calwebb_detector1 steps


# ------------------------------------------------------------------ value helpers


def _problems(problems: Sequence[tuple[Loc, str]]) -> PydanticCustomError:
    """One pydantic error carrying several (relative key path, message) problems."""
    summary = "; ".join(f"{'.'.join(map(str, loc))}: {msg}" if loc else msg
                        for loc, msg in problems)
    return PydanticCustomError(_PROBLEMS, "{summary}",
                               {"summary": summary, "problems": list(problems)})


def _fits_keyword(value: Any) -> str:
    text = str(value).strip().upper()
    if not _FITS_KEYWORD.fullmatch(text):
        raise ValueError(f"{value!r} is not a FITS keyword (1-8 characters of A-Z 0-9 - _)")
    return text


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = list(value)
        if all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in items):
            return [str(v) for v in items]
    raise ValueError(f"expected a string or a list of strings, got {value!r}")


def _regex(value: Any) -> Any:
    if value is None:
        return None
    try:
        re.compile(str(value))
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return str(value)


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _step_tokens(value: Any, *, shorthand: bool, extras: Sequence[str] = ()) -> list[str]:
    """Split a step list (string with commas/spaces, or list) into canonical names."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else _string_list(value)
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
                hint = _suggest(name.lower(), known)
                bad.append(f"unknown calwebb_detector1 step {name!r}{hint}")
    if bad:
        raise ValueError("; ".join(bad))
    return tokens


FitsKeyword = Annotated[str, BeforeValidator(_fits_keyword)]
StringList = Annotated[list[str], BeforeValidator(_string_list)]
KeywordList = Annotated[list[FitsKeyword], BeforeValidator(_string_list)]


def _upper_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k).strip().upper(): v for k, v in value.items()}
    return value


MaxDays = Annotated[dict[str, PositiveFloat], BeforeValidator(_upper_keys)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# ------------------------------------------------------------------ sections


class TimeKeys(_Section):
    """Where the observation time is: one MJD keyword, an ISO date(-time), or date + time.

    In YAML, ``time: EXPSTART`` is short for ``time: {mjd: EXPSTART}``.
    """

    mjd: FitsKeyword | None = None
    date: FitsKeyword | None = None
    time: FitsKeyword | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_keyword(cls, data: Any) -> Any:
        if isinstance(data, TimeKeys):
            return data
        if isinstance(data, str):
            return {"mjd": data}
        if not isinstance(data, Mapping):
            raise ValueError(
                "expected a keyword holding MJD (e.g. EXPSTART) or a mapping {mjd: KEY}, "
                "{date: KEY} or {date: KEY, time: KEY}"
            )
        return data

    @model_validator(mode="after")
    def _one_form(self) -> TimeKeys:
        if self.mjd and (self.date or self.time):
            raise ValueError("give either mjd or date (+ time), not both")
        if self.time and not self.date:
            raise ValueError("time needs date (e.g. {date: DATE-OBS, time: TIME-OBS})")
        if not (self.mjd or self.date):
            raise ValueError("empty: give mjd, date, or date + time")
        return self


class Inputs(_Section):
    """Which files are exposures and which header keywords they must have."""

    paths: StringList = []
    pattern: str | None = r"_uncal\.fits$"
    required_keywords: KeywordList = [
        "INSTRUME", "DETECTOR", "READPATT", "SUBARRAY", "NGROUPS", "NINTS",
    ]
    optional_keywords: KeywordList = []
    time: TimeKeys = TimeKeys(mjd="EXPSTART")

    _check_pattern = field_validator("pattern", mode="before")(_regex)

    def time_spec(self) -> tuple[str | None, str | None, str | None]:
        """The time keywords as ``(mjd_key, date_key, time_key)``; unused ones are None."""
        return self.time.mjd, self.time.date, self.time.time


class TypeRuleConfig(_Section):
    """One image-type rule; in YAML a flat mapping, e.g. ``{letter: B, EXP_TYPE: [NRC_BIAS]}``.

    ``letter`` and ``pattern`` (regular expression searched in the base name) are special;
    every other key is a FITS keyword whose value is a string or list (wildcards allowed).
    """

    letter: str | None = None
    pattern: str | None = None
    match: dict[FitsKeyword, StringList] = {}

    @model_validator(mode="before")
    @classmethod
    def _split_keywords(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError("expected a mapping of FITS keyword -> value(s), "
                             "plus optional 'letter' and 'pattern'")
        out: dict[str, Any] = {"match": {}}
        for key, value in data.items():
            name = str(key)
            if name.lower() in ("letter", "pattern"):
                out[name.lower()] = value
            else:
                out["match"][name] = value
        return out

    _check_pattern = field_validator("pattern", mode="before")(_regex)

    @field_validator("letter", mode="before")
    @classmethod
    def _one_letter(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip().upper()
        if not re.fullmatch(r"[A-Z]", text):
            raise ValueError(f"letter must be one letter A-Z, got {value!r}")
        return text

    @model_validator(mode="after")
    def _not_empty(self) -> TypeRuleConfig:
        if not self.match and not self.pattern:
            raise ValueError("matches nothing: give FITS keyword values (e.g. EXP_TYPE: "
                             "[NRC_DARK]) and/or a filename pattern")
        return self

    def to_rule(self, name: str) -> TypeRule:
        """The :class:`~refsmith.classify.TypeRule` for image type ``name``."""
        return TypeRule(name=name, letter=self.letter or name[:1].upper(),
                        match={k: tuple(v) for k, v in self.match.items()},
                        pattern=self.pattern)


class Output(_Section):
    """Where runs are written: ``<root>/<run>``."""

    root: str = "./refsmith_out"
    run: str = "auto"

    @field_validator("run", mode="before")
    @classmethod
    def _simple_name(cls, value: Any) -> Any:
        text = str(value).strip()
        if not text or "/" in text or "\\" in text:
            raise ValueError(f"run must be 'auto' or a directory name without '/', got {value!r}")
        return text


class Pipeline(_Section):
    """How the jwst pipeline is run: earlier products, reference files, CRDS."""

    search_dirs: StringList = []
    references: dict[str, str] = {}
    offline: bool = False
    crds_timeout: PositiveFloat = 30

    @field_validator("references", mode="before")
    @classmethod
    def _normalize_references(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        out, bad = {}, []
        for key, target in value.items():
            if not isinstance(target, str) or not target.strip():
                bad.append(((str(key),), "expected 'crds', 'self' or a file path/pattern"))
                continue
            text = target.strip()
            keyword = text.lower() in ("crds", "self")
            out[str(key).strip().lower()] = text.lower() if keyword else text
        if bad:
            raise _problems(bad)
        return out


class Execution(_Section):
    """Where jobs run: a local process pool, or Dask (optionally on a batch cluster)."""

    executor: Literal["local", "dask"] = "local"
    workers: int | Literal["auto"] = "auto"
    retries: int = Field(1, ge=0)
    scheduler: str | None = None
    max_memory: str | None = None
    cluster: dict[str, Any] | None = None

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise ValueError(f"workers must be 'auto' or a whole number >= 1, got {value!r}")

    @field_validator("max_memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        if value is None:
            return None
        if not _MEMORY.fullmatch(str(value).strip()):
            raise ValueError(f"max_memory must look like '4GiB' or '500MB', got {value!r}")
        return str(value).strip()

    @field_validator("cluster", mode="before")
    @classmethod
    def _cluster(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ValueError("cluster must be a mapping of dask-jobqueue options with "
                             "kind: htcondor, slurm or pbs")
        kind = str(value.get("kind", "")).strip().lower()
        if kind not in ("htcondor", "slurm", "pbs"):
            raise _problems([(("kind",), f"must be htcondor, slurm or pbs, got "
                                          f"{value.get('kind')!r}")])
        return {**value, "kind": kind}

    @model_validator(mode="after")
    def _cluster_needs_dask(self) -> Execution:
        if self.cluster is not None and self.executor != "dask":
            raise _problems([(("cluster",), "is only used with executor: dask; "
                                            "set executor: dask or remove cluster")])
        return self


class Recipe(_Section):
    """How to make one kind of individual reference file from groups of exposures."""

    reftype: str | None = None
    imtypes: str
    steps: list[str] = []
    save_steps: list[str] = []
    plugin: str | None = None
    params: dict[str, Any] = {}
    select: dict[FitsKeyword, StringList] = {}
    group_by: KeywordList | None = None
    max_days: MaxDays | None = None
    min_size: int = Field(1, ge=1)
    reuse: bool = True

    @field_validator("imtypes", mode="before")
    @classmethod
    def _imtypes_text(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"expected an imtypes string such as DD, D+, DDFF or DF+, "
                             f"got {value!r}")
        return value.strip().upper()

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, value: Any) -> Any:
        return _step_tokens(value, shorthand=True)

    @field_validator("save_steps", mode="before")
    @classmethod
    def _save_steps(cls, value: Any) -> Any:
        return _step_tokens(value, shorthand=False, extras=SAVE_STEP_EXTRAS)

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> Any:
        return {} if value is None else value


# ------------------------------------------------------------------ the config


def _default_rules() -> tuple[TypeRule, ...]:
    """The built-in classification table (:data:`refsmith.classify.DEFAULT_RULES`)."""
    try:
        from refsmith.classify import DEFAULT_RULES
    except ImportError:  # transitional, until classify.py defines the table
        return (TypeRule("dark", "D", {"EXP_TYPE": ("*DARK*",)}),
                TypeRule("flat", "F", {"EXP_TYPE": ("*FLAT*", "*LAMP*", "*LED*")}))
    return tuple(DEFAULT_RULES)


class Config(_Section):
    """A validated refsmith configuration.

    Build one with :func:`load_config`, :func:`parse_config` or :func:`default_config`;
    relative paths in it are relative to :attr:`base_dir` (see :meth:`resolve`).
    """

    instrument: str | None = None
    inputs: Inputs = Inputs()
    classify: dict[str, TypeRuleConfig] | None = None
    classify_defaults: bool = True
    group_by: KeywordList = ["DETECTOR", "SUBARRAY", "READPATT"]
    max_days: MaxDays = {}
    output: Output = Output()
    pipeline: Pipeline = Pipeline()
    execution: Execution = Execution()
    recipes: dict[str, Recipe] = {}

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
            if not _NAME.fullmatch(name):
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
            if not _NAME.fullmatch(name):
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
        if problems:
            raise _problems(problems)
        return self

    @staticmethod
    def _imtypes_problem(loc: Loc, text: str, letters: Mapping[str, str]
                         ) -> list[tuple[Loc, str]]:
        if not letters:
            return []
        from refsmith.grouping import parse_imtypes

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


_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def expand_variables(text: str, where: str = "") -> str:
    """Replace ``$NAME`` and ``${NAME}`` by environment variables; unset ones are errors.

    Parameters
    ----------
    text : str
        The string to expand.
    where : str
        Where the string comes from, for the error message.

    Raises
    ------
    ConfigError
        Naming the first variable that is not set.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in os.environ:
            raise ConfigError(f"{where + ': ' if where else ''}environment variable ${name} "
                              f"is not set; set it or write the path out")
        return os.environ[name]

    return _VARIABLE.sub(value, text)


# ------------------------------------------------------------------ loading


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file (refsmith YAML or legacy jwst_reffiles mkrefs.cfg).

    Parameters
    ----------
    path : str or path-like
        The config file; relative paths inside it are relative to its directory.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        When the file cannot be read or is invalid (all problems, one per line).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{file}: cannot read the config file: {reason}") from None
    return parse_config(text, source=str(file), base_dir=file.absolute().parent)


def parse_config(text: str, source: str = "<string>", base_dir: Path | None = None) -> Config:
    """Validate config text (refsmith YAML or legacy mkrefs.cfg).

    Parameters
    ----------
    text : str
        The YAML text.
    source : str
        Its file name, used in error messages.
    base_dir : Path, optional
        Directory relative paths are relative to (default: the current directory).

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        With every problem on its own line as ``file:line: key.path: message``.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    root, data = _read_yaml(text, source)
    if not isinstance(data, Mapping):
        line = root.start_mark.line + 1 if root is not None else 1
        what = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        raise ConfigError(f"{source}:{line}: the config is {what}; expected keys such as "
                          "inputs: and recipes: (refsmith init writes an example)")
    from refsmith import legacy

    origins: dict[Loc, Loc] = {}
    notices: list[str] = []
    is_legacy = legacy.is_legacy(data)
    if is_legacy:
        translation = legacy.translate(data, base_dir=base)
        if translation.errors:
            raise ConfigError("\n".join(
                _format(source, _line_of(root, loc), loc, msg)
                for loc, msg in translation.errors))
        data, origins, notices = translation.data, translation.origins, translation.notices
    config = _validate(data, source, root, origins)
    config._source, config._base_dir = source, base
    config._legacy, config._notices = is_legacy, notices
    return config


def default_config(base_dir: Path | str) -> Config:
    """The built-in defaults, with no recipes (enough for ``refsmith scan``).

    Parameters
    ----------
    base_dir : Path or str
        Directory relative paths are relative to.
    """
    config = Config.model_validate({}, context={"allow_no_recipes": True})
    config._source, config._base_dir = "<defaults>", Path(base_dir)
    return config


def write_example(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write :data:`EXAMPLE_CONFIG` to ``path``.

    Parameters
    ----------
    path : str or path-like
        Where to write.
    overwrite : bool
        Replace an existing file (default: refuse).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ConfigError
        When the file exists and ``overwrite`` is false, or cannot be written.
    """
    file = Path(path)
    if file.exists() and not overwrite:
        raise ConfigError(f"{file} already exists; choose another name or remove it first")
    try:
        file.write_text(EXAMPLE_CONFIG, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot write: {exc.strerror or exc}") from None
    return file


def _read_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"{mark.line + 1}" if mark else "1"
        detail = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) \
            else "YAML syntax error"
        raise ConfigError(f"{source}:{line}: {kind}: {detail}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML error: {exc}") from None
    duplicates = list(_duplicate_keys(root))
    if duplicates:
        raise ConfigError("\n".join(
            f"{source}:{line}: {key}: duplicate key (first on line {first})"
            for key, line, first in duplicates))
    return root, data


def _duplicate_keys(node: yaml.Node | None, path: str = "") -> Iterable[tuple[str, int, int]]:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            here = f"{path}.{name}" if path else name
            if name in seen:
                yield here, key.start_mark.line + 1, seen[name]
            seen.setdefault(name, key.start_mark.line + 1)
            yield from _duplicate_keys(value, here)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{index}]")


def _validate(data: Mapping[str, Any], source: str, root: yaml.Node | None,
              origins: Mapping[Loc, Loc]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        found = []
        for loc, msg in _flatten(exc):
            legacy_loc, shown = _origin(loc, origins)
            path = ".".join(map(str, loc))
            if shown:
                path += f" (from {'.'.join(map(str, legacy_loc))})"
            line = _line_of(root, legacy_loc)
            found.append((line or 0, _format(source, line, path, msg)))
        lines = [text for _, text in sorted(found, key=lambda item: item[0])]
        raise ConfigError("\n".join(dict.fromkeys(lines))) from None


def _flatten(exc: ValidationError) -> list[tuple[Loc, str]]:
    """(key path, message) for every error, with refsmith problem lists expanded."""
    out: list[tuple[Loc, str]] = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if part != "[key]")
        if len(loc) >= 3 and loc[0] == "classify" and loc[2] == "match":
            loc = loc[:2] + loc[3:]  # TypeRuleConfig.match is flat in YAML
        if error["type"] == _PROBLEMS:
            out += [(loc + tuple(rel), msg) for rel, msg in error["ctx"]["problems"]]
        elif error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            hint = _suggest(str(loc[-1]), allowed)
            if not hint and allowed:
                hint = f"; allowed here: {', '.join(allowed)}"
            out.append((loc, f"unknown key{hint}"))
        elif error["type"] == "missing":
            out.append((loc, "required key is missing"))
        else:
            msg = re.sub(r"^(Value error|Assertion failed), ", "", error["msg"])
            out.append((loc, msg))
    return out


def _allowed_keys(loc: Loc) -> list[str]:
    """Field names of the model found at ``loc`` in :class:`Config` (for suggestions)."""
    current: Any = Config
    for part in (*loc, None):
        current = _unwrap(current)
        if part is None:
            break
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) in (dict, list):
            current = typing.get_args(current)[-1]
        else:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            arg = _unwrap(arg)
            if (isinstance(arg, type) and issubclass(arg, BaseModel)) or \
                    typing.get_origin(arg) in (dict, list):
                return arg
    return annotation


def _origin(loc: Loc, origins: Mapping[Loc, Loc]) -> tuple[Loc, bool]:
    """Map a refsmith key path to the legacy file's key path (longest known prefix)."""
    for size in range(len(loc), 0, -1):
        prefix = tuple(map(str, loc[:size]))
        if prefix in origins:
            return origins[prefix] + tuple(loc[size:]), True
    return loc, False


def _line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """1-based line of the deepest YAML node found along ``loc`` (None: not found)."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if str(k.value) == str(part)] or \
                    [(k, v) for k, v in node.value if str(k.value).upper() == str(part).upper()]
            if not match:
                break
            key, node = match[0]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _format(source: str, line: int | None, path: Any, msg: str) -> str:
    if not isinstance(path, str):
        path = ".".join(map(str, path))
    where = f"{source}:{line}" if line else source
    return f"{where}: {path}: {msg}" if path else f"{where}: {msg}"


# ------------------------------------------------------------------ example


EXAMPLE_CONFIG = r"""# refsmith configuration (written by `refsmith init`; edit inputs and recipes).
# Relative paths are relative to this file; ~ and $ENVIRONMENT_VARIABLES are expanded.

instrument: nircam                 # optional; taken from the headers when absent

inputs:
  paths: ["raw/"]                  # files, directories, globs, @list.txt; CLI args add to these
  pattern: '_uncal\.fits$'         # regular expression on the base name
  required_keywords: [INSTRUME, DETECTOR, READPATT, SUBARRAY, NGROUPS, NINTS]
  optional_keywords: [FILTER, PUPIL]
  time: EXPSTART                   # MJD keyword; or {date: DATE-OBS, time: TIME-OBS}
                                   # or {date: DATE-END} (full ISO date-time)

classify:                          # optional: replaces/extends the built-in EXP_TYPE table
  dark: {EXP_TYPE: [NRC_DARK]}     # letter D (first letter of the name)
  flat: {EXP_TYPE: [NRC_FLAT, NRC_LED]}
# bias: {letter: B, EXP_TYPE: [NRC_BIAS]}
# lamp: {letter: L, pattern: '_lamp_'}   # base-name regular expression
classify_defaults: true            # false: use only the rules above

group_by: [DETECTOR, SUBARRAY, READPATT]   # members of a group agree on these
max_days: {DD: 2.0, FF: 2.0, DDFF: 10.0}   # largest time span within a group (days)

output:
  root: ./refsmith_out             # runs go to <root>/<run>
  run: auto                        # auto: named after this file, resumed when re-run

pipeline:
  search_dirs: []                  # where earlier calibrated products may be found
  references: {}                   # reftype -> crds | file path/pattern | self
  offline: false                   # true: never contact CRDS
  crds_timeout: 30                 # seconds

execution:
  executor: local                  # local (process pool) or dask
  workers: auto
  retries: 1
# scheduler: tcp://scheduler:8786  # dask: an existing scheduler
# max_memory: 4GiB
# cluster: {kind: htcondor, cores: 1, memory: 8GiB, disk: 4GiB}   # dask-jobqueue

recipes:                           # one per kind of individual reference file
  readnoise:
    imtypes: DD                    # pairs of darks
    steps: dq_init-                # "X-" = every step up to X for this instrument
    params: {sigma_clip: 3.0}      # passed to the plug-in
  superbias:
    imtypes: D+                    # all darks of a partition
    steps: saturation-
    min_size: 2
  dark:
    imtypes: D+
    steps: [saturation-, superbias, refpix, linearity]
    save_steps: []                 # intermediate products to keep
  gain:
    imtypes: DDFF                  # a dark pair with a flat pair
    steps: superbias-
    reuse: true                    # a dark pair may serve several flat pairs
  bad_pixel_mask:
    reftype: mask
    imtypes: DF+                   # all darks and all flats of a partition
    steps: [saturation-, superbias, refpix, linearity, jump, ramp_fit]
    save_steps: [fitopt]           # keep the optional ramp-fit products
    plugin: bad_pixel_mask         # default: the builtin of the recipe's name
"""

"""Reading a config file: YAML (or legacy mkrefs.cfg), validation, line-precise errors."""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from refsmith.config.config import Config
from refsmith.config.values import PROBLEMS_ERROR, Loc, suggest
from refsmith.errors import ConfigError

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
    from refsmith.config import legacy

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


# Values a config may reach through aliases (each use of an alias counts every value
# below its anchor): far above any real config, far below a "billion laughs" alias bomb.
MAX_ALIASED_VALUES = 100_000


class _AliasError(yaml.composer.ComposerError):
    """An alias refused by :class:`_BoundedLoader` (recursive, or expanding too far)."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing recursive aliases and aliases that expand too far.

    Composing shares an anchored node between its aliases, but everything walking the
    result (the duplicate-key check, construction, validation) visits it once per use: a
    few lines of nested aliases stand for billions of values.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> values it stands for (composed)
        self._values = 0  # values composed so far, aliases expanded
        self._aliased = 0  # of which reached through aliases

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """Compose one node, counting the values an alias stands for at every use."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            self._count_alias(node, event)
            return node
        before = self._values
        node = super().compose_node(parent, index)
        self._values += 1
        self._sizes[id(node)] = self._values - before
        return node

    def _count_alias(self, node: yaml.Node, event: yaml.AliasEvent) -> None:
        size = self._sizes.get(id(node))
        if size is None:  # its anchor's node is not finished: it contains the alias
            raise _AliasError(None, None, f"alias *{event.anchor} is used inside its own "
                              f"anchor &{event.anchor} (a recursive structure)",
                              event.start_mark)
        self._values += size
        self._aliased += size
        if self._aliased > MAX_ALIASED_VALUES:
            raise _AliasError(None, None, f"alias *{event.anchor}: aliases expand to more than "
                              f"{MAX_ALIASED_VALUES:,} values (an alias bomb?); write the "
                              "values out or use fewer aliases",
                              event.start_mark)


def _read_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    loader = _BoundedLoader(text)
    try:
        root = loader.get_single_node()
        # Composed again: construction rewrites merge keys (<<) in the nodes it reads.
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"{mark.line + 1}" if mark else "1"
        detail = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError | _AliasError) \
            else "YAML syntax error"
        raise ConfigError(f"{source}:{line}: {kind}: {detail}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML error: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}:{loader.get_mark().line + 1}: YAML error: values nested "
                          "too deeply") from None
    finally:
        loader.dispose()
    duplicates = list(_duplicate_keys(root, "", set()))
    if duplicates:
        raise ConfigError("\n".join(
            f"{source}:{line}: {key}: duplicate key (first on line {first})"
            for key, line, first in duplicates))
    return root, data


def _duplicate_keys(node: yaml.Node | None, path: str,
                    visited: set[int]) -> Iterable[tuple[str, int, int]]:
    """(key path, line, line of the first) of every repeated key below ``node``.

    A node reached again through an alias is checked once, at its first path.
    """
    if id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            here = f"{path}.{name}" if path else name
            if name in seen:
                yield here, key.start_mark.line + 1, seen[name]
            seen.setdefault(name, key.start_mark.line + 1)
            yield from _duplicate_keys(value, here, visited)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{index}]", visited)


def _validate(data: Mapping[str, Any], source: str, root: yaml.Node | None,
              origins: Mapping[Loc, Loc]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        found = [locate(source, root, origins, loc, msg) for loc, msg in _flatten(exc)]
        lines = [text for _, text in sorted(found, key=lambda item: item[0])]
        raise ConfigError("\n".join(dict.fromkeys(lines))) from None


def locate(source: str, root: yaml.Node | None, origins: Mapping[Loc, Loc], loc: Loc,
           message: str) -> tuple[int, str]:
    """``(line, "file:line: key.path: message")`` for a config key path; for a legacy
    config (``origins``), the line of the key it came from, named after the path."""
    legacy_loc, shown = _origin(loc, origins)
    path = ".".join(map(str, loc))
    if shown:
        path += f" (from {'.'.join(map(str, legacy_loc))})"
    line = _line_of(root, legacy_loc)
    return line or 0, _format(source, line, path, message)


def _flatten(exc: ValidationError) -> list[tuple[Loc, str]]:
    """(key path, message) for every error, with refsmith problem lists expanded."""
    out: list[tuple[Loc, str]] = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if part != "[key]")
        if len(loc) >= 3 and loc[0] == "classify" and loc[2] == "match":
            loc = loc[:2] + loc[3:]  # TypeRuleConfig.match is flat in YAML
        if error["type"] == PROBLEMS_ERROR:
            out += [(loc + tuple(rel), msg) for rel, msg in error["ctx"]["problems"]]
        elif error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            hint = suggest(str(loc[-1]), allowed)
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



"""Build a plan: config -> catalog -> start files -> groups -> jobs.

:func:`build_plan` runs the stages in that order, each a call of its package
(:mod:`refsmith.catalog`, :mod:`refsmith.planning.starts`, :mod:`refsmith.grouping`,
:mod:`refsmith.planning.planner`); the rest of this module translates the config into each
stage's options. Nothing here executes a job: :func:`build_plan` is a pure function of the
config and the files on disk; :func:`refsmith.plan_files.write_run_dir` serialises its result.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from refsmith.catalog.catalog import Catalog, header_reader, scan
from refsmith.catalog.classify import letters
from refsmith.catalog.options import CatalogOptions, TimeSpec
from refsmith.config.config import Config
from refsmith.config.loading import locate
from refsmith.config.values import suggest
from refsmith.detector1.memory import SHAPE_KEYWORDS
from refsmith.detector1.steps import APPLICABILITY_KEYWORDS
from refsmith.errors import ConfigError
from refsmith.grouping.build import group_recipes
from refsmith.grouping.imtypes import parse_imtypes
from refsmith.grouping.rule import GroupingRule
from refsmith.model import Group, Leftover
from refsmith.planning.planner import CalibrationPlan, plan_jobs
from refsmith.planning.references import HeaderReader
from refsmith.planning.specs import PlanningOptions, RecipeSpec, runs_ramp_fit
from refsmith.planning.starts import choose_starts
from refsmith.util.gc_pause import gc_paused
from refsmith.util.memory import parse_memory


@dataclass(frozen=True)
class Plan:
    """Everything ``refsmith plan`` decided, ready to serialise or execute."""

    config_source: str
    run_dir: Path
    catalog: Catalog
    calibration: CalibrationPlan
    group_by: tuple[str, ...]
    notices: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def groups(self) -> tuple[Group, ...]:
        return tuple(self.calibration.groups)

    @property
    def leftovers(self) -> tuple[Leftover, ...]:
        return tuple(self.calibration.leftovers)


def output_root(config: Config) -> Path:
    """The output root directory (``output.root``), absolute."""
    return config.resolve(config.output.root)


def run_dir_for(config: Config, override: str | None = None, *, new_run: bool = False
                ) -> Path:
    """The run directory: ``--run-dir``, else ``<root>/<run>``.

    ``run: auto`` names the run after the config file (``refsmith.yaml`` ->
    ``<root>/refsmith``) so that planning or running the same config again updates and
    resumes the same run directory. A numbered run (``run: run###``, legacy ``runID:
    AUTO``) is the latest one under the root; ``new_run`` (``--new-run``) the next.

    Raises
    ------
    ConfigError
        ``new_run`` with ``override``, or with a run name that is not numbered.
    """
    if override:
        if new_run:
            raise ConfigError("--new-run and --run-dir exclude each other (--run-dir names "
                              "the run directory)")
        return Path(override).expanduser().resolve()
    run = str(config.output.run)
    if "#" in run:
        return output_root(config) / numbered_run(output_root(config), run, new=new_run)
    if new_run:
        raise ConfigError(f"--new-run needs numbered runs, but output.run is {run!r}: write "
                          "output.run: run### (legacy: runID: AUTO), or name the directory "
                          "with --run-dir")
    if run.lower() == "auto":
        stem = Path(config.source).stem if config.source and config.source[0] != "<" else "run"
        run = re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "run"
    return output_root(config) / run


def numbered_run(root: Path, template: str, *, new: bool = False) -> str:
    """The run of a numbered ``output.run`` (``run###``: one run of ``#``s) in ``root``.

    The latest existing directory whose name is the template with a number for the
    ``#``s (any number of digits, as jwst_reffiles' ``runID: AUTO``), by its number; with
    ``new``, the next number, written with at least as many digits as ``#``s. The first
    run, when there is none, is number 0 (``run000``) either way.
    """
    head, hashes, tail = re.fullmatch(r"([^#]*)(#+)([^#]*)", template).groups()
    pattern = re.compile(re.escape(head) + r"(\d+)" + re.escape(tail))
    latest: tuple[int, bool, str] | None = None  # number, written with len(hashes) digits
    try:
        entries = list(os.scandir(root))
    except OSError:  # no root yet
        entries = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir():
            key = (int(match.group(1)), len(match.group(1)) == len(hashes), entry.name)
            latest = key if latest is None or key > latest else latest
    if latest is None:
        return f"{head}{0:0{len(hashes)}d}{tail}"
    if new:
        return f"{head}{latest[0] + 1:0{len(hashes)}d}{tail}"
    return latest[2]


def input_paths(config: Config, extra: Sequence[str] = ()) -> list[str]:
    """The config's ``inputs.paths`` (relative to the config file) and ``extra`` ones
    (command-line: relative to the current directory), absolute; ``@lists`` keep their
    ``@`` (what a list names is relative to the list)."""
    def absolute(item: str, resolve: Callable[[str], Path]) -> str:
        text = str(item).strip()
        return "@" + str(resolve(text[1:])) if text.startswith("@") else str(resolve(text))

    def here(path: str) -> Path:
        return Path(path).expanduser().resolve()

    return ([absolute(p, config.resolve) for p in config.inputs.paths] +
            [absolute(p, here) for p in extra])


def catalog_options(config: Config, cache: Path | None) -> CatalogOptions:
    """Translate the config's ``inputs`` / ``classify`` sections into catalog options."""
    mjd_key, date_key, time_key = config.inputs.time_spec()
    return CatalogOptions(
        pattern=config.inputs.pattern,
        required_keywords=tuple(config.inputs.required_keywords),
        # the planner needs the keywords that decide whether a SKIPPED step counts as done,
        # and the exposure's size for the jobs' memory estimates
        optional_keywords=tuple(dict.fromkeys((*config.inputs.optional_keywords,
                                               *APPLICABILITY_KEYWORDS, *SHAPE_KEYWORDS))),
        time=TimeSpec(mjd=mjd_key, date=date_key, time=time_key),
        type_rules=tuple(config.type_rules()),
        cache=cache,
    )


def recipe_specs(config: Config) -> list[RecipeSpec]:
    """One RecipeSpec (grouping rule + calibration needs + memory budget) per recipe."""
    type_letters = letters(config.type_rules())
    specs = []
    for name, recipe in config.recipes.items():
        rule = GroupingRule(
            recipe=name,
            reftype=recipe.reftype or name,
            imtypes=recipe.imtypes,
            group_by=tuple(k.upper() for k in config.recipe_group_by(name)),
            max_days=dict(config.recipe_max_days(name)),
            min_size=recipe.min_size,
            reuse=recipe.reuse,
            select={
                k.upper(): tuple([v] if isinstance(v, str) else v)
                for k, v in recipe.select.items()
            },
            letters=type_letters,
        )
        steps = recipe.steps if isinstance(recipe.steps, str) else tuple(recipe.steps)
        specs.append(
            RecipeSpec(
                rule=rule,
                steps=steps,
                save_steps=tuple(recipe.save_steps),
                plugin=recipe.plugin,
                params=dict(recipe.params),
                memory=recipe_memory(config, name),
            )
        )
    return specs


def recipe_memory(config: Config, name: str) -> int:
    """The memory budget (bytes) of recipe ``name``'s reference-file and combine jobs:
    ``recipes.<name>.memory``, else ``execution.reffile_memory``."""
    own = config.recipes[name].memory
    key = f"recipes.{name}.memory" if own else "execution.reffile_memory"
    return parse_memory(own or config.execution.reffile_memory, key) or 0


def build_plan(
    config: Config,
    inputs: Sequence[str] = (),
    *,
    run_dir: str | None = None,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
    params: Mapping[str, Any] = {},
) -> Plan:
    """Catalog the inputs, choose each exposure's start file, group them per recipe and
    plan the jobs: the four stages, in this order, after every recipe has been checked
    against its plug-in (:func:`check_plugins`).

    Parameters
    ----------
    config : Config
        The validated configuration.
    inputs : sequence of str
        Extra inputs (files, directories, globs, ``@list`` files) added to
        ``inputs.paths`` of the config.
    run_dir : str, optional
        Override of the run directory.
    use_cache : bool
        Use (and update) the header cache ``<root>/catalog.sqlite``.
    progress : callable, optional
        ``progress(done, total)`` called while headers are read.
    params : mapping
        Plug-in parameters from the command line (``--param recipe.key=value``), checked
        with the config's.

    Raises
    ------
    ConfigError
        A recipe its plug-in refuses (parameters, image types, steps, reftype), with the
        config's file:line; bad steps; ...
    """
    # the recipes against their plug-ins first: a config error before any header is read
    warnings = check_plugins(config, params)
    # ~10^5 acyclic objects per 10,000 exposures: collections cost ~30% (measured)
    with gc_paused():
        root = output_root(config)
        paths = input_paths(config, inputs)
        cache = root / "catalog.sqlite" if use_cache else None
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
        options = catalog_options(config, cache)
        # 1. catalog: files -> exposures
        catalog = scan(paths, options, base_dir=config.base_dir, progress=progress)
        planning = planning_options(config, run_dir_for(config, run_dir), header_reader(options))
        recipes = recipe_specs(config)
        # 2. start files: the file each candidate starts from (none: it leaves the recipe)
        starts = choose_starts(catalog.exposures, recipes, planning)
        # 3. groups of each recipe
        groups = group_recipes(catalog.exposures, [r.rule for r in recipes],
                               starts.excluded_paths())
        # 4. jobs: calibration, reference-file and combine jobs
        calibration = plan_jobs(catalog.exposures, groups, starts, recipes, planning)
        return Plan(
            config_source=config.source,
            run_dir=planning.output_dir,
            catalog=catalog,
            calibration=calibration,
            group_by=tuple(config.group_by),
            notices=tuple(config.notices),
            warnings=tuple(warnings),
        )


def planning_options(config: Config, run_dir: Path, read_headers: HeaderReader
                     ) -> PlanningOptions:
    """The calibrated store (``<root>/calibrated``), search directories and references of
    the config, the run directory jobs write to, and the header reader of products and
    reference files."""
    return PlanningOptions(
        store_dir=output_root(config) / "calibrated",
        read_headers=read_headers,
        search_dirs=tuple(config.resolve(d) for d in config.pipeline.search_dirs),
        references=resolved_references(config),
        output_dir=run_dir,
        config_digest=config_digest(config),
    )


def config_digest(config: Config) -> str:
    """``<config file> sha256:<first 16 hex digits>`` of its bytes ('' when not a file)."""
    path = Path(config.source)
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return f"{path.resolve()} sha256:{hashlib.sha256(data).hexdigest()[:16]}"


def resolved_references(config: Config) -> dict[str, str]:
    """``pipeline.references`` with file paths and globs made absolute (config-relative)."""
    keywords = ("crds", "self", "n/a")
    return {reftype: value if value.strip().lower() in keywords else str(config.resolve(value))
            for reftype, value in config.pipeline.references.items()}


def plugin_warnings(config: Config) -> list[str]:
    """Recipes whose plug-in is not installed: planning goes on, their jobs will fail.

    ``package.module:Class`` names are not imported here (that is the run's business).
    """
    from refsmith.plugins.registry import BUILTIN_PLUGINS, installed_plugins

    wanted = {recipe.plugin or name for name, recipe in config.recipes.items()}
    if all(":" in plugin or plugin in BUILTIN_PLUGINS for plugin in wanted):
        return []  # no need to read every package's entry points (~0.1 s)
    installed = installed_plugins()
    warnings = []
    for name, recipe in config.recipes.items():
        plugin = recipe.plugin or name
        if ":" not in plugin and plugin not in installed:
            warnings.append(
                f"recipe {name!r}: plug-in {plugin!r} is not installed (installed: "
                f"{', '.join(sorted(installed)) or 'none'}); its groups are planned, but its "
                "reference-file jobs will fail at run time"
            )
    return warnings


# ---------------------------------------------------------------- recipes vs. plug-ins


def check_plugins(config: Config, overrides: Mapping[str, Any] = {}) -> list[str]:
    """Check every recipe against what its plug-in declares, before anything is planned.

    The recipe's ``params`` and the ``--param`` ``overrides`` against the plug-in's
    ``Params`` model; its ``reftype``; its ``imtypes`` and ``steps`` against the plug-in's
    ``needs`` (:class:`refsmith.plugins.base.Needs`; not checked when it declares none).
    Built-ins are checked from their declarations (no numerical code imported); other
    plug-ins are imported.

    Returns
    -------
    list of str
        Warnings: plug-ins not installed, or that cannot be imported here (their jobs will
        fail at run time unless the workers can).

    Raises
    ------
    ConfigError
        Every problem, one per line, as ``file:line: key.path: message`` (legacy configs:
        with the key it came from); ``--param`` problems name the option.
    """
    from refsmith.plugins.registry import (
        BUILTIN_PLUGINS,
        PluginNotFoundError,
        declared_plugin,
        installed_plugins,
    )

    warnings = plugin_warnings(config)
    problems: list[tuple[tuple[str, ...] | None, str]] = []
    for key in overrides:
        owner, dot, _ = str(key).partition(".")
        if dot and owner not in config.recipes:
            problems.append((None, f"--param {key}: no recipe {owner!r} in the config "
                                   f"(recipes: {', '.join(config.recipes)})"))
    installed: dict[str, str] | None = None
    takes: dict[str, str] = {}  # plug-in -> its parameters, when one was unknown
    type_letters: dict[str, str] | None = None
    for name, recipe in config.recipes.items():
        plugin_name = recipe.plugin or name
        if ":" not in plugin_name and plugin_name not in BUILTIN_PLUGINS:
            installed = installed_plugins() if installed is None else installed
            if plugin_name not in installed:
                continue  # plugin_warnings says so
        try:
            plugin = declared_plugin(plugin_name)
        except PluginNotFoundError as exc:
            warnings.append(f"recipe {name!r}: plug-in {plugin_name!r} cannot be checked "
                            f"here: {exc}; its reference-file jobs will fail unless the "
                            "workers can import it")
            continue
        if getattr(plugin, "needs", None) is not None and type_letters is None:
            type_letters = letters(config.type_rules())
        found = recipe_problems(name, recipe, plugin_name, plugin, overrides,
                                type_letters or {})
        problems += found
        if any("unknown parameter" in message for _, message in found):
            takes[plugin_name] = ", ".join(sorted(
                f.alias or n for n, f in plugin.Params.model_fields.items()))
    if problems:
        where = ConfigLocator(config)
        lines = [message if loc is None else where(loc, message)
                 for loc, message in sorted(problems, key=lambda p: where.line(p[0]))]
        lines += [f"plug-in {name!r} takes: {known} (refsmith plugins describes them)"
                  for name, known in takes.items()]
        raise ConfigError("\n".join(dict.fromkeys(lines)))
    return warnings


def recipe_problems(name: str, recipe: Any, plugin_name: str, plugin: type,
                    overrides: Mapping[str, Any], type_letters: Mapping[str, str]
                    ) -> list[tuple[tuple[str, ...] | None, str]]:
    """(config key path or None for the command line, message) of everything the plug-in
    refuses in recipe ``name``."""
    from refsmith.plugins.base import param_problems

    here = ("recipes", name)
    problems: list[tuple[tuple[str, ...] | None, str]] = []
    made = str(getattr(plugin, "reftype", "") or "")
    if made and str(recipe.reftype or name).lower() != made.lower():
        problems.append(((*here, "reftype"), f"{recipe.reftype or name!r}, but plug-in "
                         f"{plugin_name!r} makes reftype {made!r}"))
    _, refused = param_problems(plugin.Params, name, recipe.params, overrides)
    for problem in refused:
        what = (f"unknown parameter of plug-in {plugin_name!r}" +
                suggest(problem.key, problem.known) if problem.unknown else
                f"plug-in {plugin_name!r}: {problem.reason}")
        if problem.source == "config params":
            problems.append(((*here, "params", problem.key), what))
        else:
            problems.append((None, f"{problem.source}: {what}"))
    needs = getattr(plugin, "needs", None)
    if needs is None:
        return problems
    try:
        counts = parse_imtypes(recipe.imtypes, type_letters)
    except ConfigError:
        counts = None  # the config's own check reports it
    lacking = needs.imtypes_problem(counts, type_letters) if counts is not None else ""
    if lacking:
        problems.append(((*here, "imtypes"), f"{recipe.imtypes!r}, but plug-in "
                         f"{plugin_name!r} {lacking} (its default: {plugin.imtypes})"))
    if needs.ramps and runs_ramp_fit(recipe.steps):
        default = ", ".join(getattr(plugin, "steps", ()) or ()) or "raw"
        problems.append(((*here, "steps"), f"{' '.join(recipe.steps)!r} includes ramp_fit "
                         f"(the inputs would be slopes), but plug-in {plugin_name!r} reads "
                         f"ramps: stop before ramp_fit (its default: {default})"))
    return problems


class ConfigLocator:
    """``where(loc, message)`` -> ``file:line: key.path: message`` for a config key path
    (``recipes.x.params.y``), as the config loader writes its errors; for a legacy config,
    the line of the key it came from.

    The config is read again (only when there is an error to report).
    """

    def __init__(self, config: Config) -> None:
        import yaml

        self.source = config.source
        self.root: Any = None
        self.origins: dict[tuple[str, ...], tuple[Any, ...]] = {}
        try:
            text = Path(config.source).read_text(encoding="utf-8")
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)  # loaded once already
            if config.legacy:
                from refsmith.config.legacy import translate

                self.origins = dict(translate(yaml.safe_load(text),
                                              base_dir=config.base_dir).origins)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            pass  # no line numbers

    def line(self, loc: tuple[str, ...] | None) -> int:
        """1-based line of the deepest key found along ``loc`` (0: none)."""
        return 0 if loc is None else locate(self.source, self.root, self.origins, loc, "")[0]

    def __call__(self, loc: tuple[str, ...], message: str) -> str:
        return locate(self.source, self.root, self.origins, loc, message)[1]


# ---------------------------------------------------------------- summaries


def summary_rows(plan: Plan) -> list[dict[str, Any]]:
    """One row per recipe x partition: groups formed and candidates left out."""
    groups = Counter((g.recipe, "/".join(str(v) for _, v in g.partition)) for g in plan.groups)
    by_path = plan.catalog.by_path()
    left: Counter[tuple[str, str]] = Counter()
    keys: dict[str, tuple[str, ...]] = {}
    for g in plan.groups:
        keys.setdefault(g.recipe, tuple(k for k, _ in g.partition))
    for x in plan.leftovers:
        exposure = by_path.get(x.path)
        fields = keys.get(x.recipe, plan.group_by)
        part = "/".join(str(exposure.value(k)) if exposure else "?" for k in fields)
        left[(x.recipe, part)] += 1
    rows = []
    for recipe, part in sorted(set(groups) | set(left)):
        rows.append({"recipe": recipe, "partition": part,
                     "groups": groups[(recipe, part)], "left_out": left[(recipe, part)]})
    return rows

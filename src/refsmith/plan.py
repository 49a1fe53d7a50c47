"""Build a plan (catalog -> groups -> calibration jobs) and write the run directory.

Nothing here executes a job: :func:`build_plan` is a pure function of the config and the
files on disk, and :func:`write_run_dir` serialises its result (``plan.json``,
``catalog.ecsv``, ``groups.ecsv``, ``leftovers.ecsv``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from refsmith import __version__
from refsmith.catalog import Catalog, CatalogOptions, TimeSpec, gc_paused, scan
from refsmith.classify import letters
from refsmith.config import Config
from refsmith.ecsv import ecsv_text
from refsmith.files import atomic_write, atomic_write_text
from refsmith.grouping import GroupingRule
from refsmith.model import Exposure, Group, Leftover
from refsmith.planning import CalibrationPlan, PlanningOptions, RecipeSpec, plan_calibration
from refsmith.steps import APPLICABILITY_KEYWORDS

SCHEMA = "refsmith.plan/1"


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


def run_dir_for(config: Config, override: str | None = None) -> Path:
    """The run directory: ``--run-dir``, else ``<root>/<run>``.

    ``run: auto`` names the run after the config file (``refsmith.yaml`` ->
    ``<root>/refsmith``) so that planning or running the same config again updates and
    resumes the same run directory.
    """
    if override:
        return Path(override).expanduser().resolve()
    run = str(config.output.run)
    if run.lower() == "auto":
        stem = Path(config.source).stem if config.source and config.source[0] != "<" else "run"
        run = re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "run"
    return output_root(config) / run


def catalog_options(config: Config, cache: Path | None) -> CatalogOptions:
    """Translate the config's ``inputs`` / ``classify`` sections into catalog options."""
    mjd_key, date_key, time_key = config.inputs.time_spec()
    return CatalogOptions(
        pattern=config.inputs.pattern,
        required_keywords=tuple(config.inputs.required_keywords),
        # the planner needs the keywords that decide whether a SKIPPED step counts as done
        optional_keywords=tuple(dict.fromkeys((*config.inputs.optional_keywords,
                                               *APPLICABILITY_KEYWORDS))),
        time=TimeSpec(mjd=mjd_key, date=date_key, time=time_key),
        type_rules=tuple(config.type_rules()),
        cache=cache,
    )


def recipe_specs(config: Config) -> list[RecipeSpec]:
    """One RecipeSpec (grouping rule + calibration needs) per configured recipe."""
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
            )
        )
    return specs


def build_plan(
    config: Config,
    inputs: Sequence[str] = (),
    *,
    run_dir: str | None = None,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Plan:
    """Catalog the inputs, group them per recipe and plan their calibration.

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
    """
    # ~10^5 acyclic objects per 10,000 exposures: collections cost ~30% (measured)
    with gc_paused():
        root = output_root(config)
        all_inputs = [str(config.resolve(p)) for p in config.inputs.paths]
        all_inputs += [str(Path(p).expanduser().resolve()) if not p.startswith("@") else p
                       for p in inputs]
        cache = root / "catalog.sqlite" if use_cache else None
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
        options = catalog_options(config, cache)
        catalog = scan(all_inputs, options, base_dir=config.base_dir, progress=progress)
        target = run_dir_for(config, run_dir)
        planning_options = PlanningOptions(
            store_dir=root / "calibrated",
            search_dirs=tuple(config.resolve(d) for d in config.pipeline.search_dirs),
            references=resolved_references(config),
            catalog_options=options,
            output_dir=target,
            config_digest=config_digest(config),
        )
        calibration = plan_calibration(catalog.exposures, recipe_specs(config), planning_options)
        return Plan(
            config_source=config.source,
            run_dir=target,
            catalog=catalog,
            calibration=calibration,
            group_by=tuple(config.group_by),
            notices=tuple(config.notices),
            warnings=tuple(plugin_warnings(config)),
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


# ---------------------------------------------------------------- serialisation


def exposure_record(exposure: Exposure, group_by: Sequence[str],
                    partitions: dict[tuple, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The plan.json record of one exposure (``partitions``: a cache of the partition
    records, which most exposures share)."""
    values = tuple(exposure.value(k) for k in group_by)
    partition = partitions.get(values) if partitions is not None else None
    if partition is None:
        partition = {k: _plain(v) for k, v in zip(group_by, values, strict=True)}
        if partitions is not None and all(type(v) is str for v in values):
            partitions[values] = partition
    return {
        "path": exposure.path,
        "usable": exposure.usable,
        "reason": exposure.reason,
        "imtype": exposure.imtype,
        "instrument": exposure.instrument,
        "detector": exposure.detector,
        "exp_type": exposure.exp_type,
        "readpatt": exposure.readpatt,
        "subarray": exposure.subarray,
        "ngroups": exposure.ngroups,
        "nints": exposure.nints,
        "partition": partition,
        "mjd": exposure.mjd,
        "completed_steps": list(exposure.completed_steps),
    }


def group_record(group: Group, plain: dict[int, Any] | None = None) -> dict[str, Any]:
    """The plan.json record of one group.

    ``plain``: a cache of the plain partition and rule of groups sharing them (by ``id``
    of the group's objects, alive while the groups are).
    """
    plain = {} if plain is None else plain
    partition = plain.get(id(group.partition))
    if partition is None:
        partition = plain[id(group.partition)] = {k: _plain(v) for k, v in group.partition}
    rule = plain.get(id(group.rule))
    if rule is None:
        rule = plain[id(group.rule)] = _plain(dict(group.rule))
    return {
        "id": group.id,
        "recipe": group.recipe,
        "reftype": group.reftype,
        "imtypes": group.imtypes,
        "partition": partition,
        "members": [{"role": m.role, "path": m.path} for m in group.members],
        "mjd_span": list(group.mjd_span),
        "rule": rule,
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """plan.json content (schema ``refsmith.plan/1``, documented in docs/plan-schema.md)."""
    return {key: list(value) if key in RECORD_LISTS else value
            for key, value in _plan_content(plan, to_encode=False).items()}


def _plan_content(plan: Plan, *, to_encode: bool) -> dict[str, Any]:
    """plan.json content with each long list (:data:`RECORD_LISTS`) as an iterator of
    records. ``to_encode``: for the encoder only, calibration and reffile jobs as their
    dataclasses (orjson reads their fields directly) and records sharing their partition
    and rule dicts; else every record is a tree of its own."""
    calibration = plan.calibration
    discovery = plan.catalog.discovery
    plain: dict[int, Any] | None = {} if to_encode else None
    partitions: dict[tuple, dict[str, Any]] | None = {} if to_encode else None
    return {
        "schema": SCHEMA,
        "refsmith_version": __version__,
        "created": plan.created,
        "config": plan.config_source,
        "run_dir": str(plan.run_dir),
        "notices": list(plan.notices),
        "warnings": list(plan.warnings),
        "inputs": {
            "files": len(discovery.paths),
            "missing": list(discovery.missing),
            "duplicates": discovery.duplicates,
            "filtered_by_pattern": discovery.filtered,
        },
        "exposures": (exposure_record(e, plan.group_by, partitions)
                      for e in plan.catalog.exposures),
        "groups": (group_record(g, plain) for g in calibration.groups),
        "leftovers": ({"recipe": x.recipe, "path": x.path, "reason": x.reason}
                      for x in calibration.leftovers),
        "calibration_jobs": iter(calibration.calibration_jobs) if to_encode
        else (j.to_dict() for j in calibration.calibration_jobs),
        "reffile_jobs": iter(calibration.reffile_jobs) if to_encode
        else (j.to_dict() for j in calibration.reffile_jobs),
        "combine_jobs": (j.to_dict() for j in calibration.combine_jobs),
        "stats": {k: dict(v) for k, v in dict(calibration.stats).items()},
    }


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def write_run_dir(plan: Plan) -> dict[str, Path]:
    """Write plan.json, catalog.ecsv, groups.ecsv and leftovers.ecsv into the run directory.

    Each file is written under a temporary name and renamed into place.
    """
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: plan.run_dir / name for name in
             ("plan.json", "catalog.ecsv", "groups.ecsv", "leftovers.ecsv")}
    with gc_paused():  # ~10^6 acyclic objects: collections cost ~30% (measured)
        atomic_write(paths["plan.json"], lambda handle: write_plan_json(plan, handle))
        atomic_write_text(paths["catalog.ecsv"], ecsv_text(plan.catalog.table_columns()))
        groups = plan.groups
        members = [(g, m) for g in groups for m in g.members]
        partition = {g.id: "/".join(str(v) for _, v in g.partition) for g in groups}
        atomic_write_text(paths["groups.ecsv"], ecsv_text([
            ("group", "string", [g.id for g, _ in members]),
            ("recipe", "string", [g.recipe for g, _ in members]),
            ("reftype", "string", [g.reftype for g, _ in members]),
            ("role", "string", [m.role for _, m in members]),
            ("path", "string", [m.path for _, m in members]),
            ("partition", "string", [partition[g.id] for g, _ in members]),
        ]))
        leftovers = plan.leftovers
        atomic_write_text(paths["leftovers.ecsv"], ecsv_text([
            ("recipe", "string", [x.recipe for x in leftovers]),
            ("path", "string", [x.path for x in leftovers]),
            ("reason", "string", [x.reason for x in leftovers]),
        ]))
    return paths


# The long lists of plan.json: one record per line (the rest is indented).
RECORD_LISTS = ("exposures", "groups", "leftovers", "calibration_jobs", "reffile_jobs",
                "combine_jobs")


def _encode_default(value: Any) -> Any:
    """What orjson cannot encode itself: mappings as dicts, sets sorted, the rest as text."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def plan_json(plan: Plan) -> bytes:
    """plan.json as :func:`write_plan_json` writes it."""
    buffer = io.BytesIO()
    write_plan_json(plan, buffer)
    return buffer.getvalue()


def write_plan_json(plan: Plan, handle: BinaryIO) -> None:
    """Write plan.json (UTF-8): :func:`plan_to_dict`'s content, the top level indented by
    one space, each record of the long lists (:data:`RECORD_LISTS`) on one line.

    Records are encoded by orjson (jobs straight from their dataclasses, whose fields are
    their ``to_dict`` keys: a test holds the two equal) and written one by one, so that
    no 40 MB text is ever held: 0.13 s instead of ~1.1 s for the jobs of 10,000 exposures,
    and ~60,000 fewer page faults (measured).
    """
    encode = functools.partial(orjson.dumps, default=_encode_default,
                               option=orjson.OPT_NON_STR_KEYS)
    write = handle.write
    write(b"{\n")
    for n, (key, value) in enumerate(_plan_content(plan, to_encode=True).items()):
        write(b" " if n == 0 else b",\n ")
        write(json.dumps(key).encode() + b": ")
        if key in RECORD_LISTS:
            separator = b"[\n  "
            for item in value:
                write(separator)
                write(encode(item))
                separator = b",\n  "
            write(b"[]" if separator == b"[\n  " else b"\n ]")
        else:  # JSON strings hold no raw newline: every one is an indentation
            text = json.dumps(value, indent=1, default=_encode_default).replace("\n", "\n ")
            write(text.encode())
    write(b"\n}\n")


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

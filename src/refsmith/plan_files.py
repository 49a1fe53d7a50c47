"""The run directory's plan files: ``plan.json`` (schema ``refsmith.plan/1``, documented in
docs/plan-schema.md), ``catalog.ecsv``, ``groups.ecsv`` and ``leftovers.ecsv``.

Serialises a :class:`refsmith.plan.Plan`; each file is written under a temporary name and
renamed into place.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from refsmith import __version__
from refsmith.model import Exposure, Group
from refsmith.util.ecsv import ecsv_text
from refsmith.util.files import atomic_write, atomic_write_text
from refsmith.util.gc_pause import gc_paused

if TYPE_CHECKING:
    from refsmith.plan import Plan

SCHEMA = "refsmith.plan/1"


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

"""``refsmith explain``: what happens to one exposure, and why.

The exposure is looked for among the inputs of the config (``inputs.paths`` and the inputs
given on the command line) or of a run directory (the exposures of its plan.json). A file
given by its path that is not among them (a legacy ``mkrefs.cfg`` names no inputs: they came
from the command line) is explained as one more input, with a note saying so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from refsmith.calibrate.products import product_notes
from refsmith.config.config import Config
from refsmith.detector1.naming import exposure_base
from refsmith.errors import RefsmithError
from refsmith.jobs.records import CalibrationJob
from refsmith.model import Exposure, Group
from refsmith.plan import Plan, build_plan, output_root
from refsmith.planning.calibration_jobs import apart_reasons


def lookup(plan: Plan, file: str) -> Exposure | None:
    """The catalogued exposure named by ``file`` (a path, or a unique base name); None if
    no input has that path or name. Raises RefsmithError when several have that name."""
    by_path = plan.catalog.by_path()
    for path in (os.path.abspath(os.path.expanduser(file)), os.path.realpath(file)):
        if path in by_path:
            return by_path[path]
    name = Path(file).name
    matches = [e for e in plan.catalog.exposures if e.name == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise RefsmithError(f"{file}: {len(matches)} inputs have this name; give the full path")
    return None


def plan_with(config: Config, file: str, inputs: Sequence[str] = (),
              run_dir: str | None = None) -> tuple[Plan, Exposure, str]:
    """The plan of the config's inputs and ``inputs``, the exposure ``file`` names in it, and
    a note ('' when none): a file given by path that is not among the inputs is planned as
    one more input (the note says so; its groups can only hold inputs given)."""
    plan = build_plan(config, inputs, run_dir=run_dir)
    exposure = lookup(plan, file)
    if exposure is not None:
        return plan, exposure, ""
    count = len(plan.catalog.exposures)
    if not Path(file).expanduser().is_file():
        how = ("give its path" if count else
               "give its path, and the other inputs after it (refsmith explain CONFIG FILE "
               "INPUTS...) or a run directory instead of the config")
        raise RefsmithError(f"{file}: not among the {count} inputs of this config, and no "
                            f"such file: {how}")
    plan = build_plan(config, [*inputs, file], run_dir=run_dir)
    exposure = lookup(plan, file)
    if exposure is None:  # not expected: explicit files bypass inputs.pattern
        raise RefsmithError(f"{file}: could not be catalogued as an input")
    where = ("the config names no inputs (a jwst_reffiles config takes them from the "
             "command line)" if not count else f"it is not among the {count} inputs of "
             "this config (or inputs.pattern leaves it out)")
    note = (f"note: {where}; explained as one more input. Groups form only from the inputs "
            "given: add the others after the file, or explain from the run directory")
    return plan, exposure, note


def membership(group: Group, path: str, most: int = 4) -> str:
    """'as D2 with D1 <name>': the role of ``path`` in ``group`` and at most ``most`` of
    the other members (a D+ group can hold hundreds; groups.ecsv lists them all)."""
    role = next(m.role for m in group.members if m.path == path)
    others = [f"{m.role} {Path(m.path).name}" for m in group.members if m.path != path]
    if not others:
        return f"as {role}"
    if len(others) > most:
        others[most:] = [f"{len(others) - most} more ({len(group.members)} members, "
                         "all in groups.ecsv)"]
        return f"as {role} with {', '.join(others[:-1])} and {others[-1]}"
    return f"as {role} with {', '.join(others)}"


def explain(config: Config, file: str, inputs: Sequence[str] = (),
            run_dir: str | None = None) -> str:
    """A plain-text account of ``file``: catalog facts, groups or reasons, calibration."""
    return account(config, file, inputs, run_dir)[0]


def account(config: Config, file: str, inputs: Sequence[str] = (),
            run_dir: str | None = None) -> tuple[str, dict[str, Any]]:
    """What happens to ``file`` and why, as text (``refsmith explain``) and as a record
    (``--format json``): catalog facts, each recipe's groups or reasons, calibration.

    Parameters
    ----------
    config : Config
        The configuration.
    file : str
        The exposure: a path, or the base name of one of the inputs.
    inputs : sequence of str
        Inputs added to the config's ``inputs.paths`` (as for ``refsmith plan``).
    run_dir : str, optional
        The run directory the plan's jobs write to.
    """
    plan, exposure, note = plan_with(config, file, inputs, run_dir)
    record: dict[str, Any] = {"path": exposure.path, "note": note, "usable": exposure.usable,
                              "reason": "" if exposure.usable else exposure.reason}
    lines = [exposure.path]
    if note:
        lines.append(f"  {note}")
    if not exposure.usable:
        lines.append(f"  unusable: {exposure.reason}")
    facts = {
        "image type": exposure.imtype or "unclassified (no classification rule matched)",
        "instrument": exposure.instrument, "detector": exposure.detector,
        "exp_type": exposure.exp_type, "readpatt": exposure.readpatt,
        "subarray": exposure.subarray, "ngroups": exposure.ngroups, "nints": exposure.nints,
        "mjd": None if exposure.mjd is None else f"{exposure.mjd:.6f}",
        "steps done": ", ".join(exposure.completed_steps) or "none",
    }
    lines += [f"  {key:11s} {value}" for key, value in facts.items() if value is not None]
    record["facts"] = {key.replace(" ", "_"): value for key, value in facts.items()}
    store = output_root(config) / "calibrated" / exposure_base(exposure.path)
    record["products"] = (product_notes(store, config.pipeline.references)
                          if store.is_dir() else [])
    lines += ["  " + product for product in record["products"]]
    record["recipes"] = recipes = []
    calibration = plan.calibration
    if not exposure.usable:
        lines.append("recipes: none can use it until the problem above is fixed")
        return "\n".join(lines), record
    for recipe in config.recipes:
        groups = [g for g in calibration.groups
                  if g.recipe == recipe and exposure.path in g.paths]
        reasons = [x.reason for x in calibration.leftovers
                   if x.recipe == recipe and x.path == exposure.path]
        entry: dict[str, Any] = {"recipe": recipe, "candidate": bool(groups or reasons)}
        recipes.append(entry)
        if not groups and not reasons:
            entry["why_not"] = (f"uses {config.recipes[recipe].imtypes}, this is "
                                f"{exposure.imtype or 'unclassified'}")
            lines.append(f"recipe {recipe}: not a candidate ({entry['why_not']})")
            continue
        lines.append(f"recipe {recipe}:")
        entry["groups"] = [{"id": group.id,
                            "members": [{"role": m.role, "path": m.path} for m in group.members]}
                           for group in groups]
        for group in groups:
            lines.append(f"  in group {group.id} {membership(group, exposure.path)}")
        entry["left_out"] = reasons
        lines += [f"  left out: {reason}" for reason in reasons]
        choice = calibration.start_choices.get((recipe, exposure.path))
        entry["start"] = choice.to_dict() if choice is not None and groups else None
        if choice is not None and groups:
            lines += ["  " + line for line in choice.describe().splitlines()]
    lines += calibration_lines(calibration.calibration_jobs, exposure, record)
    return "\n".join(lines), record


def calibration_lines(jobs: Sequence[CalibrationJob], exposure: Exposure,
                      record: dict[str, Any]) -> list[str]:
    """The calibration jobs of ``exposure`` (recipes sharing a job share it) and, for jobs
    from one start file, the step that keeps their states apart (``record``: the same)."""
    mine = [job for job in jobs if job.exposure == exposure.path]
    record["calibration_jobs"] = [{"id": job.id, "steps_to_run": list(job.steps_to_run),
                                   "recipes": list(job.recipes)} for job in mine]
    record["not_one_job"] = apart = apart_reasons(mine, exposure)
    if not mine:
        return []
    lines = ["calibration:"]
    lines += [f"  {job.id}: runs {', '.join(job.steps_to_run)} from "
              f"{Path(job.start_file).name} for {', '.join(job.recipes)}"
              + (f", saving {len(job.outputs) - 1} intermediate state"
                 f"{'s' if len(job.outputs) > 2 else ''}" if len(job.outputs) > 1 else "")
              for job in mine]
    lines += [f"  not one job: {reason}" for reason in apart]
    return lines

"""``refsmith explain``: what happens to one exposure, and why."""

from __future__ import annotations

import os
from pathlib import Path

from refsmith.calibrate.products import product_notes
from refsmith.config.config import Config
from refsmith.detector1.naming import exposure_base
from refsmith.errors import RefsmithError
from refsmith.model import Exposure, Group
from refsmith.plan import Plan, build_plan, output_root


def find_exposure(plan: Plan, file: str) -> Exposure:
    """The catalogued exposure named by ``file`` (a path, or a unique base name)."""
    by_path = plan.catalog.by_path()
    real = os.path.realpath(file)
    if real in by_path:
        return by_path[real]
    name = Path(file).name
    matches = [e for e in plan.catalog.exposures if e.name == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise RefsmithError(f"{file}: {len(matches)} inputs have this name; give the full path")
    raise RefsmithError(f"{file}: not among the {len(by_path)} inputs of this config")


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


def explain(config: Config, file: str, run_dir: str | None = None) -> str:
    """A plain-text account of ``file``: catalog facts, groups or reasons, calibration."""
    plan = build_plan(config, run_dir=run_dir)
    exposure = find_exposure(plan, file)
    lines = [exposure.path]
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
    store = output_root(config) / "calibrated" / exposure_base(exposure.path)
    if store.is_dir():
        lines += ["  " + note for note in product_notes(store, config.pipeline.references)]
    calibration = plan.calibration
    if not exposure.usable:
        lines.append("recipes: none can use it until the problem above is fixed")
        return "\n".join(lines)
    for recipe in config.recipes:
        groups = [g for g in calibration.groups
                  if g.recipe == recipe and exposure.path in g.paths]
        reasons = [x.reason for x in calibration.leftovers
                   if x.recipe == recipe and x.path == exposure.path]
        if not groups and not reasons:
            lines.append(f"recipe {recipe}: not a candidate "
                         f"(uses {config.recipes[recipe].imtypes}, this is "
                         f"{exposure.imtype or 'unclassified'})")
            continue
        lines.append(f"recipe {recipe}:")
        for group in groups:
            lines.append(f"  in group {group.id} {membership(group, exposure.path)}")
        lines += [f"  left out: {reason}" for reason in reasons]
        choice = calibration.start_choices.get((recipe, exposure.path))
        if choice is not None and groups:
            lines += ["  " + line for line in choice.describe().splitlines()]
    return "\n".join(lines)

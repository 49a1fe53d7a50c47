"""The job DAG of a plan (stage 4): calibration jobs, reference-file jobs, combine jobs.

From every recipe's groups and the start file of each member (:mod:`.starts`): what each
(exposure, start file) is asked for, one :class:`CalibrationJob` per merged run so that no
exposure is calibrated twice (:mod:`.calibration_jobs`), and the ReffileJobs / CombineJobs
that complete the DAG (:mod:`.reffile_jobs`), with per-recipe statistics. Pure planning:
reads primary headers only (with the reader it is given), imports no pipeline code. See
docs/planning.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from refsmith.detector1.keywords import normalize_instrument
from refsmith.detector1.steps import step_order
from refsmith.errors import PlanError
from refsmith.jobs.records import CalibrationJob, CombineJob, ReffileJob, StartChoice
from refsmith.model import Exposure, Group, Leftover
from refsmith.planning.calibration_jobs import Request, calibration_jobs, check_clashes
from refsmith.planning.references import ReferenceResolver
from refsmith.planning.reffile_jobs import (
    check_acyclic,
    combine_jobs,
    combine_specs,
    reffile_jobs,
    self_lookup,
)
from refsmith.planning.specs import PlanningOptions, RecipeSpec, save_states, wants_fitopt
from refsmith.planning.starts import StartFiles

if TYPE_CHECKING:
    from refsmith.grouping.build import GroupingResult

__all__ = ["CalibrationPlan", "plan_jobs"]


@dataclass(frozen=True)
class CalibrationPlan:
    """The calibration part of a plan: groups, leftovers, the job DAG and statistics."""

    groups: tuple[Group, ...]
    leftovers: tuple[Leftover, ...]
    calibration_jobs: tuple[CalibrationJob, ...]
    reffile_jobs: tuple[ReffileJob, ...]
    combine_jobs: tuple[CombineJob, ...]
    start_choices: Mapping[tuple[str, str], StartChoice] = field(default_factory=dict)
    stats: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def choices_for(self, path: str) -> list[StartChoice]:
        """The start choices of one exposure, one per recipe that considered it."""
        return [c for (_, p), c in sorted(self.start_choices.items()) if p == path]


def plan_jobs(exposures: Sequence[Exposure], grouped: Mapping[str, GroupingResult],
              starts: StartFiles, recipes: Sequence[RecipeSpec], options: PlanningOptions
              ) -> CalibrationPlan:
    """Plan the jobs that calibrate every group's members and make the reference files.

    Parameters
    ----------
    exposures : sequence of Exposure
        The catalog.
    grouped : mapping
        recipe -> its groups and leftovers (:func:`refsmith.grouping.build.group_recipes`).
    starts : StartFiles
        The start file of every candidate (:func:`refsmith.planning.starts.choose_starts`).
    recipes : sequence of RecipeSpec
        The recipes, in config order (ties in statistics go to the earlier recipe).
    options : PlanningOptions
        Calibrated store, references and their header reader, output directory.

    Returns
    -------
    CalibrationPlan
        Groups and leftovers in recipe order (a recipe's candidates without a usable start
        file first), the jobs, every start choice and per-recipe statistics.

    Raises
    ------
    ConfigError
        Unknown step names, naming the recipe (an exposure whose instrument lacks a
        required step is a leftover that names the step).
    PlanError
        Unresolvable references, clashing outputs, or a cyclic ``self`` reference.
    """
    store = Path(options.store_dir)
    out_root = Path(options.output_dir) if options.output_dir else Path(".").resolve()
    by_path = {e.path: e for e in exposures}
    spec_by_name = {r.name: r for r in recipes}
    groups = [g for r in recipes for g in grouped[r.name].groups]
    leftovers = [x for r in recipes
                 for x in (*starts.excluded.get(r.name, ()), *grouped[r.name].leftovers)]

    # requests per (exposure, start file)
    requests, member_state = _requests(groups, starts, by_path, spec_by_name)

    # combine job skeletons (their outputs are where 'self' references point)
    combines = combine_specs(groups, spec_by_name)
    resolver = ReferenceResolver(options.references, options.read_headers,
                                 self_lookup(recipes, combines, out_root))

    # calibration jobs
    uses_self = any(str(v).strip().lower() == "self" for v in options.references.values())
    jobs, produced, owners = calibration_jobs(requests, store, starts.base_name, resolver,
                                              uses_self, [r.name for r in recipes],
                                              starts.headers)
    check_clashes(jobs)

    # reffile and combine jobs
    reffiles = reffile_jobs(groups, member_state, produced, spec_by_name, out_root,
                            options.config_digest, by_path)
    combined = combine_jobs(combines, reffiles, out_root, options.config_digest)
    if uses_self:  # only 'self' references can make a cycle
        edges: dict[str, list[str]] = {j.id: list(j.depends_on) for j in jobs}
        edges.update({j.id: list(j.depends_on) for j in (*reffiles, *combined)})
        check_acyclic(edges)

    stats = _statistics(recipes, groups, member_state, jobs, owners, leftovers,
                        starts.choices)
    return CalibrationPlan(
        groups=tuple(groups), leftovers=tuple(leftovers), calibration_jobs=tuple(jobs),
        reffile_jobs=tuple(reffiles), combine_jobs=tuple(combined),
        start_choices=starts.choices, stats=stats,
    )


def _requests(groups: Sequence[Group], starts: StartFiles,
              by_path: Mapping[str, Exposure], spec_by_name: Mapping[str, RecipeSpec]
              ) -> tuple[dict[tuple[str, str], Request],
                         dict[str, list[tuple[StartChoice, frozenset[str]]]]]:
    """What each (exposure, start file) is asked for by the groups; and per group, the
    (start choice, target state) of each member, in member order."""
    requests: dict[tuple[str, str], Request] = {}
    member_state: dict[str, list[tuple[StartChoice, frozenset[str]]]] = {}
    targets: dict[tuple[str, ...], frozenset[str]] = {}
    choices = starts.choices
    for group in groups:
        recipe = spec_by_name[group.recipe]
        served = (group.recipe, group.id)
        states = member_state[group.id] = []
        for member in group.members:
            exposure = by_path[member.path]
            choice = choices.get((group.recipe, member.path))
            if choice is None:  # a member that was no candidate (groups made elsewhere)
                choice = starts.choice(recipe, exposure)
            if choice.excluded:
                raise PlanError(f"group {group.id}: {member.path} cannot be calibrated for "
                                f"recipe {recipe.name!r}: {choice.excluded}")
            target = targets.get(choice.required)
            if target is None:
                target = targets[choice.required] = frozenset(choice.required)
            states.append((choice, target))
            if not choice.steps_to_run:
                continue
            request = requests.get((exposure.path, choice.start_file))
            if request is None:
                request = requests[(exposure.path, choice.start_file)] = Request(
                    exposure, choice.start_file, frozenset(choice.start_steps))
            request.targets.setdefault(target, set()).add(served)
            if recipe.save_steps:
                instrument = normalize_instrument(exposure.instrument or "")
                for state in save_states(recipe, choice.required, instrument):
                    if state - request.start_steps:
                        request.saves.add(state)
                if wants_fitopt(recipe) and "ramp_fit" in choice.steps_to_run:
                    order = step_order(instrument)
                    cut = order.index("ramp_fit")
                    request.fitopt.add(frozenset(s for s in target if order.index(s) <= cut))
    return requests, member_state




def _statistics(recipes, groups, member_state, jobs, owners, leftovers, choices
                ) -> dict[str, dict[str, int]]:
    """Per recipe: exposures, already at state, jobs, step executions requested/saved."""
    recipe_of = {g.id: g.recipe for g in groups}
    exposures: dict[str, set[str]] = {r.name: set() for r in recipes}
    ready: dict[str, set[str]] = {r.name: set() for r in recipes}
    requested: Counter[str] = Counter()
    for group, states in member_state.items():
        name = recipe_of[group]
        for choice, _ in states:
            exposures[name].add(choice.exposure)
            if choice.steps_to_run:
                requested[name] += len(choice.steps_to_run)
            else:
                ready[name].add(choice.exposure)
    used: Counter[str] = Counter()
    planned: Counter[str] = Counter()  # a job's steps count for its owner (in its recipes)
    for job in jobs:
        used.update(job.recipes)
        planned[owners[job.id]] += len(job.steps_to_run)
    excluded: Counter[str] = Counter(
        x.recipe for x in leftovers
        if (choice := choices.get((x.recipe, x.path))) is not None and choice.excluded == x.reason)
    return {
        recipe.name: {
            "exposures": len(exposures[recipe.name]),
            "already_at_required_state": len(ready[recipe.name]),
            "excluded_by_start_state": excluded[recipe.name],
            "jobs": used[recipe.name],
            "step_executions_requested": requested[recipe.name],
            "step_executions_planned": planned[recipe.name],
            "step_executions_saved": requested[recipe.name] - planned[recipe.name],
        }
        for recipe in recipes
    }

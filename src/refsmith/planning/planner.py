"""Calibration planning: which calwebb_detector1 steps each grouped exposure still needs.

For every recipe and candidate exposure: the required state (from the recipe's ``steps``),
the best file to start from (the raw file or an earlier product of the same exposure),
then one :class:`CalibrationJob` per (start file, target state), merged so that no
exposure is calibrated twice (:mod:`refsmith.planning.calibration_jobs`), and the
ReffileJobs / CombineJobs that complete the DAG (:mod:`refsmith.planning.reffile_jobs`).
Pure planning: reads primary headers only, imports no pipeline code. See docs/planning.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refsmith.detector1.keywords import canonical_step, normalize_instrument
from refsmith.detector1.naming import exposure_base
from refsmith.detector1.steps import step_order
from refsmith.errors import ConfigError, PlanError
from refsmith.jobs.records import (
    CalibrationJob,
    CombineJob,
    ReffileJob,
    StartChoice,
)
from refsmith.model import Exposure, Group, Leftover
from refsmith.planning import reffile_jobs as refjobs
from refsmith.planning.calibration_jobs import Request, calibration_jobs, check_clashes
from refsmith.planning.references import HeaderReader, ReferenceResolver
from refsmith.planning.specs import RecipeSpec, required_state, save_states, wants_fitopt
from refsmith.planning.starts import (
    choose_start,
    default_header_reader,
    find_products,
    needs_reread,
)

if TYPE_CHECKING:
    from refsmith.catalog.options import CatalogOptions
    from refsmith.grouping.rule import GroupingRule

__all__ = ["CalibrationPlan", "PlanningOptions", "plan_calibration"]

_UNSET = object()
GroupBuilder = Callable[[Sequence[Exposure], Any], Any]


@dataclass(frozen=True)
class PlanningOptions:
    """Where products and references are, and how to read their headers.

    ``read_headers`` (paths -> Exposure records) defaults to :func:`refsmith.catalog.catalog.scan`
    with ``catalog_options`` (pattern ``\\.fits$``, only INSTRUME/DETECTOR required).
    """

    store_dir: Path
    search_dirs: tuple[Path, ...] = ()
    references: Mapping[str, str] = field(default_factory=dict, hash=False)
    catalog_options: CatalogOptions | None = None
    output_dir: Path | None = None
    read_headers: HeaderReader | None = field(default=None, compare=False)
    config_digest: str = ""  # recorded in reference-file jobs (provenance)


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


# ---------------------------------------------------------------- entry point


def plan_calibration(exposures: Sequence[Exposure], recipes: Sequence[RecipeSpec],
                     options: PlanningOptions, *,
                     group_builder: GroupBuilder | None = None) -> CalibrationPlan:
    """Plan the calibration of every grouped exposure of every recipe.

    Parameters
    ----------
    exposures : sequence of Exposure
        The catalog.
    recipes : sequence of RecipeSpec
        The recipes, in config order (ties in statistics go to the earlier recipe).
    options : PlanningOptions
        Calibrated store, search directories, references, header reading.
    group_builder : callable, optional
        ``(exposures, rule) -> GroupingResult``; default
        :func:`refsmith.grouping.build.build_groups`.

    Returns
    -------
    CalibrationPlan

    Raises
    ------
    ConfigError
        Unknown steps, or steps the instrument does not have, naming the recipe.
    PlanError
        Unresolvable references, clashing outputs, or a cyclic ``self`` reference.
    """
    if group_builder is None:
        from refsmith.grouping.build import build_groups

        shared: dict[tuple, Any] = {}  # recipes screening the same exposures share it

        def group_builder(candidates: Sequence[Exposure], rule: GroupingRule) -> Any:
            return build_groups(candidates, rule,
                                shared=shared if candidates is exposures else None)
    read = options.read_headers or default_header_reader(options.catalog_options)
    store = Path(options.store_dir)
    out_root = Path(options.output_dir) if options.output_dir else Path(".").resolve()
    by_path = {e.path: e for e in exposures}

    # 1. candidates of each recipe, and the products of their exposures
    from refsmith.grouping.imtypes import parse_imtypes

    candidates: dict[str, list[Exposure]] = {}
    for recipe in recipes:
        for item in (recipe.steps if not isinstance(recipe.steps, str) else [recipe.steps]):
            for part in str(item).replace(",", " ").split():
                try:
                    canonical_step(part.rstrip("-"))
                except ConfigError as error:
                    raise ConfigError(f"recipe {recipe.name!r}: {error}") from None
        types = set(parse_imtypes(recipe.rule.imtypes, recipe.rule.letters))
        candidates[recipe.name] = [e for e in exposures if e.usable and e.imtype in types]
    # every candidate once (most are candidates of several recipes)
    unique = {e.path: e for cands in candidates.values() for e in cands}
    base_of = {path: exposure_base(path) for path in unique}

    def base_name(path: str) -> str:
        base = base_of.get(path)
        return exposure_base(path) if base is None else base

    product_paths = find_products([*options.search_dirs, store], set(base_of.values()),
                                  set(by_path))
    reread = sorted(p for p, e in unique.items() if needs_reread(e))
    wanted = sorted({p for ps in product_paths.values() for p in ps}) + reread
    headers = {h.path: h for h in read(wanted)} if wanted else {}
    products = {b: [headers[p] for p in ps if p in headers] for b, ps in product_paths.items()}

    # 2. start choices; exposures with no usable start leave the recipe before grouping
    choices: dict[tuple[str, str], StartChoice] = {}
    groups: list[Group] = []
    leftovers: list[Leftover] = []
    spec_by_name = {r.name: r for r in recipes}
    required_by: dict[tuple[str, str | None], Any] = {}

    def choose(recipe: RecipeSpec, exposure: Exposure) -> StartChoice:
        # the required state per (recipe, INSTRUME value); None: unknown instrument
        state_key = (recipe.name, exposure.instrument)
        required = required_by.get(state_key, _UNSET)
        if required is _UNSET:
            try:
                instrument = normalize_instrument(exposure.instrument or "")
            except ConfigError:
                required = None
            else:
                required = required_state(recipe, instrument)
                save_states(recipe, required, instrument)  # validates save_steps
            required_by[state_key] = required
        if required is None:
            return StartChoice(recipe.name, exposure.path, (), "", (), (),
                               excluded=f"unknown instrument "
                               f"{exposure.instrument!r}: cannot plan calibration")
        view = headers.get(exposure.path, exposure) if headers else exposure
        found = products.get(base_name(exposure.path), []) if products else []
        return choose_start(view, found, recipe.name, required)

    for recipe in recipes:
        name = recipe.name
        excluded = set()
        for exposure in candidates[name]:
            choice = choices[(name, exposure.path)] = choose(recipe, exposure)
            if choice.excluded:
                excluded.add(exposure.path)
                leftovers.append(Leftover(name, exposure.path, choice.excluded))
        result = group_builder(
            [e for e in exposures if e.path not in excluded] if excluded else exposures,
            recipe.rule)
        groups.extend(result.groups)
        leftovers.extend(result.leftovers)

    # 3. requests per (exposure, start file)
    requests, member_state = _requests(groups, choices, choose, by_path, spec_by_name)

    # 4. combine job skeletons (their outputs are where 'self' references point)
    combines = refjobs.combine_specs(groups, spec_by_name)
    resolver = ReferenceResolver(options.references, read,
                                 refjobs.self_lookup(recipes, combines, out_root))

    # 5. calibration jobs
    uses_self = any(str(v).strip().lower() == "self" for v in options.references.values())
    jobs, produced, owners = calibration_jobs(requests, store, base_name, resolver,
                                              uses_self, [r.name for r in recipes], headers)
    check_clashes(jobs)

    # 6. reffile and combine jobs
    reffile_jobs = refjobs.reffile_jobs(groups, member_state, produced, spec_by_name, out_root,
                                        options.config_digest, by_path)
    combine_jobs = refjobs.combine_jobs(combines, reffile_jobs, out_root, options.config_digest)
    if uses_self:  # only 'self' references can make a cycle
        edges: dict[str, list[str]] = {j.id: list(j.depends_on) for j in jobs}
        edges.update({j.id: list(j.depends_on) for j in (*reffile_jobs, *combine_jobs)})
        refjobs.check_acyclic(edges)

    stats = _statistics(recipes, groups, member_state, jobs, owners, leftovers, choices)
    return CalibrationPlan(
        groups=tuple(groups), leftovers=tuple(leftovers), calibration_jobs=tuple(jobs),
        reffile_jobs=tuple(reffile_jobs), combine_jobs=tuple(combine_jobs),
        start_choices=choices, stats=stats,
    )


def _requests(groups: Sequence[Group], choices: dict[tuple[str, str], StartChoice],
              choose: Callable[[RecipeSpec, Exposure], StartChoice],
              by_path: Mapping[str, Exposure], spec_by_name: Mapping[str, RecipeSpec]
              ) -> tuple[dict[tuple[str, str], Request],
                         dict[str, list[tuple[StartChoice, frozenset[str]]]]]:
    """What each (exposure, start file) is asked for by the groups; and per group, the
    (start choice, target state) of each member, in member order."""
    requests: dict[tuple[str, str], Request] = {}
    member_state: dict[str, list[tuple[StartChoice, frozenset[str]]]] = {}
    targets: dict[tuple[str, ...], frozenset[str]] = {}
    for group in groups:
        recipe = spec_by_name[group.recipe]
        served = (group.recipe, group.id)
        states = member_state[group.id] = []
        for member in group.members:
            exposure = by_path[member.path]
            choice = choices.get((group.recipe, member.path))
            if choice is None:  # a group builder's member that was no candidate
                choice = choices[(group.recipe, member.path)] = choose(recipe, exposure)
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

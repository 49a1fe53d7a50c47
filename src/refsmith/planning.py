"""Calibration planning: which calwebb_detector1 steps each grouped exposure still needs.

For every recipe and candidate exposure: the required state (from the recipe's ``steps``),
the best file to start from (the raw file or an earlier product of the same exposure),
then one :class:`CalibrationJob` per (start file, target state), merged so that no
exposure is calibrated twice, and the ReffileJobs / CombineJobs that complete the DAG.
Pure planning: reads primary headers only, imports no pipeline code. See docs/planning.md.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refsmith import steps as pipeline_steps
from refsmith.candidates import (
    choose_start,
    default_header_reader,
    evaluate_candidate,
    find_products,
    needs_reread,
)
from refsmith.errors import ConfigError, PlanError
from refsmith.jobs import (
    CalibrationJob,
    CombineJob,
    Output,
    ReffileInput,
    ReffileJob,
    Rejected,
    StartChoice,
)
from refsmith.merging import FITOPT, job_templates
from refsmith.model import Exposure, Group, Leftover
from refsmith.naming import exposure_base, safe_label
from refsmith.references import HeaderReader, ReferenceResolver

if TYPE_CHECKING:
    from refsmith.catalog import CatalogOptions
    from refsmith.grouping import GroupingRule

__all__ = [
    "CalibrationJob", "CalibrationPlan", "CombineJob", "Output", "PlanningOptions",
    "RecipeSpec", "ReffileInput", "ReffileJob", "Rejected", "StartChoice",
    "choose_start", "evaluate_candidate", "plan_calibration", "required_state",
]

_UNSET = object()
GroupBuilder = Callable[[Sequence[Exposure], Any], Any]


@dataclass(frozen=True)
class RecipeSpec:
    """What one recipe needs: its grouping rule and the calibration state of its inputs."""

    rule: GroupingRule
    steps: str | tuple[str, ...]
    save_steps: tuple[str, ...] = ()
    plugin: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def name(self) -> str:
        return self.rule.recipe


@dataclass(frozen=True)
class PlanningOptions:
    """Where products and references are, and how to read their headers.

    ``read_headers`` (paths -> Exposure records) defaults to :func:`refsmith.catalog.scan`
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


# ---------------------------------------------------------------- required state


def required_state(recipe: RecipeSpec, instrument: str) -> tuple[str, ...]:
    """The steps ``recipe`` needs complete on an exposure of ``instrument`` (in order)."""
    try:
        return pipeline_steps.expand_steps(recipe.steps, instrument)
    except ConfigError as error:
        raise ConfigError(f"recipe {recipe.name!r}: steps {recipe.steps!r}: {error}") from None


def save_states(recipe: RecipeSpec, required: Sequence[str], instrument: str
                ) -> tuple[frozenset[str], ...]:
    """The intermediate states ``save_steps`` asks to keep (``fitopt`` excluded)."""
    rank = {s: i for i, s in enumerate(pipeline_steps.step_order(instrument))}
    states = []
    for item in recipe.save_steps:
        if str(item).strip().lower() == FITOPT:
            if "ramp_fit" not in required:
                raise ConfigError(f"recipe {recipe.name!r}: save_steps 'fitopt' needs ramp_fit "
                                  "in steps")
            continue
        try:
            step = pipeline_steps.canonical_step(str(item))
        except ConfigError as error:
            raise ConfigError(f"recipe {recipe.name!r}: save_steps: {error}") from None
        if step not in required:
            raise ConfigError(f"recipe {recipe.name!r}: save_steps {item!r} is not among the "
                              f"steps the recipe runs ({', '.join(required)})")
        states.append(frozenset(s for s in required if rank[s] <= rank[step]))
    return tuple(states)


def wants_fitopt(recipe: RecipeSpec) -> bool:
    return any(str(s).strip().lower() == FITOPT for s in recipe.save_steps)


# ---------------------------------------------------------------- merging and jobs


def _overrides(chain: Sequence[str], exposure: Exposure, resolver: ReferenceResolver
               ) -> tuple[dict[str, dict[str, str]], tuple[str, ...]]:
    """Reference overrides per step of ``chain`` and the jobs they come from."""
    overrides: dict[str, dict[str, str]] = {}
    depends: set[str] = set()
    for step in chain:
        for reftype in pipeline_steps.STEP_REFTYPES.get(step, ()):
            resolved = resolver.resolve(reftype, exposure)
            if resolved.path is not None:
                overrides.setdefault(step, {})[reftype] = resolved.path
            if resolved.depends_on:
                depends.add(resolved.depends_on)
    return overrides, tuple(sorted(depends))


@dataclass
class _Request:
    """Everything asked of one (exposure, start file)."""

    raw: Exposure
    start: str
    start_steps: frozenset[str]
    targets: dict[frozenset[str], set[tuple[str, str]]] = field(default_factory=dict)
    saves: set[frozenset[str]] = field(default_factory=set)
    fitopt: set[frozenset[str]] = field(default_factory=set)


def _partition_label(partition: Sequence[tuple[str, Any]]) -> str:
    return safe_label("-".join(str(v) for _, v in partition)) if partition else "all"


def _match_partition(partition: Sequence[tuple[str, Any]], exposure: Exposure) -> bool:
    return all(str(exposure.value(k)).upper() == str(v).upper() for k, v in partition)


def _check_acyclic(edges: Mapping[str, Iterable[str]]) -> None:
    """Raise PlanError if ``self`` references make the job graph cyclic."""
    state: dict[str, int] = {}
    for root in sorted(edges):
        stack = [(root, iter(sorted(edges.get(root, ()))))]
        state[root] = state.get(root, 0) or 1
        if state[root] == 2:
            continue
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child, 0) == 1:
                raise PlanError(
                    f"job {child} depends on itself through 'self' references "
                    f"({' -> '.join(n for n, _ in stack)} -> {child}); a recipe cannot use "
                    "the reference file it makes; set pipeline.references for that type"
                )
            elif state.get(child, 0) == 0:
                state[child] = 1
                stack.append((child, iter(sorted(edges.get(child, ())))))


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
        ``(exposures, rule) -> GroupingResult``; default :func:`refsmith.grouping.build_groups`.

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
        from refsmith.grouping import build_groups

        shared: dict[tuple, Any] = {}  # recipes screening the same exposures share it

        def group_builder(candidates: Sequence[Exposure], rule: GroupingRule) -> Any:
            return build_groups(candidates, rule,
                                shared=shared if candidates is exposures else None)
    read = options.read_headers or default_header_reader(options.catalog_options)
    store = Path(options.store_dir)
    out_root = Path(options.output_dir) if options.output_dir else Path(".").resolve()
    by_path = {e.path: e for e in exposures}

    # 1. candidates of each recipe, and the products of their exposures
    from refsmith.grouping import parse_imtypes

    candidates: dict[str, list[Exposure]] = {}
    for recipe in recipes:
        for item in (recipe.steps if not isinstance(recipe.steps, str) else [recipe.steps]):
            for part in str(item).replace(",", " ").split():
                try:
                    pipeline_steps.canonical_step(part.rstrip("-"))
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
                instrument = pipeline_steps.normalize_instrument(exposure.instrument or "")
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

    # 4. reffile and combine job skeletons (outputs are needed by 'self' references)
    combine_specs: dict[str, tuple[RecipeSpec, tuple, list[Group]]] = {}
    labels: dict[int, str] = {}  # groups of one partition share its tuple
    for group in groups:
        label = labels.get(id(group.partition))
        if label is None:
            label = labels[id(group.partition)] = _partition_label(group.partition)
        job_id = f"combine-{group.recipe}-{label}"
        combine_specs.setdefault(job_id, (spec_by_name[group.recipe], group.partition, []))
        combine_specs[job_id][2].append(group)

    def combine_output(recipe: str, partition: Sequence[tuple[str, Any]]) -> str:
        name = f"{recipe}_{_partition_label(partition)}.fits"
        return str(out_root / "final" / recipe / name)

    def self_lookup(reftype: str, exposure: Exposure) -> tuple[str, str]:
        makers = sorted({r.name for r in recipes if r.rule.reftype == reftype})
        if not makers:
            raise PlanError(f"reference type {reftype!r} is 'self' but no recipe makes it "
                            f"(needed for {exposure.path})")
        if len(makers) > 1:
            raise PlanError(f"reference type {reftype!r} is 'self' but recipes "
                            f"{', '.join(makers)} all make it (needed for {exposure.path})")
        for job_id, (spec, partition, _) in sorted(combine_specs.items()):
            if spec.name == makers[0] and _match_partition(partition, exposure):
                return combine_output(spec.name, partition), job_id
        raise PlanError(f"reference type {reftype!r} is 'self' but recipe {makers[0]!r} forms "
                        f"no group matching {exposure.path} (DETECTOR={exposure.detector}, "
                        f"SUBARRAY={exposure.subarray})")

    resolver = ReferenceResolver(options.references, read, self_lookup)

    # 5. calibration jobs
    uses_self = any(str(v).strip().lower() == "self" for v in options.references.values())
    jobs, produced, owners = _calibration_jobs(requests, store, base_name, resolver,
                                               uses_self, [r.name for r in recipes])
    _check_clashes(jobs)

    # 6. reffile and combine jobs
    reffile_jobs = _reffile_jobs(groups, member_state, produced, spec_by_name, out_root,
                                 options.config_digest)
    reffile_by_group = {j.group: j for j in reffile_jobs}
    combine_jobs = [
        CombineJob(
            id=job_id, recipe=spec.name, reftype=spec.rule.reftype,
            plugin=spec.plugin or spec.name, partition=tuple(partition),
            inputs=tuple(reffile_by_group[g.id].output for g in members),
            output=combine_output(spec.name, partition),
            depends_on=tuple(sorted(reffile_by_group[g.id].id for g in members)),
            params=dict(spec.params), config=options.config_digest,
        )
        for job_id, (spec, partition, members) in sorted(combine_specs.items())
    ]
    if uses_self:  # only 'self' references can make a cycle
        edges: dict[str, list[str]] = {j.id: list(j.depends_on) for j in jobs}
        edges.update({j.id: list(j.depends_on) for j in (*reffile_jobs, *combine_jobs)})
        _check_acyclic(edges)

    stats = _statistics(recipes, groups, member_state, jobs, owners, leftovers, choices)
    return CalibrationPlan(
        groups=tuple(groups), leftovers=tuple(leftovers), calibration_jobs=tuple(jobs),
        reffile_jobs=tuple(reffile_jobs), combine_jobs=tuple(combine_jobs),
        start_choices=choices, stats=stats,
    )


def _requests(groups: Sequence[Group], choices: dict[tuple[str, str], StartChoice],
              choose: Callable[[RecipeSpec, Exposure], StartChoice],
              by_path: Mapping[str, Exposure], spec_by_name: Mapping[str, RecipeSpec]
              ) -> tuple[dict[tuple[str, str], _Request],
                         dict[str, list[tuple[StartChoice, frozenset[str]]]]]:
    """What each (exposure, start file) is asked for by the groups; and per group, the
    (start choice, target state) of each member, in member order."""
    requests: dict[tuple[str, str], _Request] = {}
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
                request = requests[(exposure.path, choice.start_file)] = _Request(
                    exposure, choice.start_file, frozenset(choice.start_steps))
            request.targets.setdefault(target, set()).add(served)
            if recipe.save_steps:
                instrument = pipeline_steps.normalize_instrument(exposure.instrument or "")
                for state in save_states(recipe, choice.required, instrument):
                    if state - request.start_steps:
                        request.saves.add(state)
                if wants_fitopt(recipe) and "ramp_fit" in choice.steps_to_run:
                    order = pipeline_steps.step_order(instrument)
                    cut = order.index("ramp_fit")
                    request.fitopt.add(frozenset(s for s in target if order.index(s) <= cut))
    return requests, member_state


def _calibration_jobs(requests: Mapping[tuple[str, str], _Request], store: Path,
                      base_name: Callable[[str], str], resolver: ReferenceResolver,
                      uses_self: bool, recipe_names: Sequence[str]
                      ) -> tuple[list[CalibrationJob],
                                 dict[tuple[str, frozenset[str]], tuple[str, str]],
                                 dict[str, str]]:
    """One job per merged run of each request; the (job id, path) of each product by
    (exposure, state); the recipe that owns each job (for the statistics)."""
    jobs: list[CalibrationJob] = []
    produced: dict[tuple[str, frozenset[str]], tuple[str, str]] = {}
    owners: dict[str, str] = {}
    override_cache: dict[tuple, tuple[dict[str, dict[str, str]], tuple[str, ...]]] = {}
    instruments: dict[str | None, str] = {}  # INSTRUME value -> normalised
    store_prefix = os.path.join(store, "")
    for (path, start), request in sorted(requests.items()):
        raw = request.raw
        instrument = instruments.get(raw.instrument)
        if instrument is None:
            instrument = pipeline_steps.normalize_instrument(raw.instrument or "")
            instruments[raw.instrument] = instrument
        base = base_name(path)
        directory = store_prefix + base  # os.path.join: no base name starts with '/'
        prefix = directory + "/"
        label = safe_label(base)
        templates = job_templates(instrument, request.start_steps,
                                  frozenset(request.targets), frozenset(request.saves),
                                  frozenset(request.fitopt))
        for template in templates:
            outputs = tuple([
                Output(steps, f"{prefix}{base}_{suffix}.fits", kind,
                       f"{base}_{strun_suffix}.fits")
                for steps, kind, suffix, strun_suffix in template.outputs
            ])
            key = (template.chain, instrument, raw.detector, raw.subarray)
            if uses_self or key not in override_cache:
                override_cache[key] = _overrides(template.chain, raw, resolver)
            overrides, depends = override_cache[key]
            job_id = f"cal-{label}-{template.label}"
            for output, state in zip(
                    (o for o in outputs if o.kind == "product"), template.products, strict=True):
                produced[(path, state)] = (job_id, output.path)
            override_flags = [f"--steps.{step}.override_{reftype}={ref}"
                              for step in template.chain
                              for reftype, ref in sorted(overrides.get(step, {}).items())
                              ] if overrides else []
            if len(templates) == 1:  # one run serves every request
                serves = {rg for served in request.targets.values() for rg in served}
            else:
                serves = {rg for state in template.states for rg in request.targets[state]}
            names = {n for n, _ in serves}
            jobs.append(CalibrationJob(
                id=job_id, exposure=path, instrument=instrument, start_file=start,
                start_steps=template.start_steps, steps_to_run=template.chain,
                steps_to_skip=template.skip, outputs=outputs, overrides=overrides,
                argv=("strun", "calwebb_detector1", start,
                      f"--output_dir={directory}", f"--output_file={base}",
                      *template.flags, *override_flags),
                groups=tuple(sorted({g for _, g in serves})),
                recipes=tuple([n for n in recipe_names if n in names]),
                depends_on=depends,
            ))
            finals = {n for n, _ in request.targets[template.final]}
            owners[job_id] = next(n for n in recipe_names if n in finals)
    return jobs, produced, owners


def _reffile_jobs(groups: Sequence[Group],
                  member_state: Mapping[str, list[tuple[StartChoice, frozenset[str]]]],
                  produced: Mapping[tuple[str, frozenset[str]], tuple[str, str]],
                  spec_by_name: Mapping[str, RecipeSpec], out_root: Path, config_digest: str
                  ) -> list[ReffileJob]:
    """One reference-file job per group, after the calibration jobs of its members."""
    reffile_jobs: list[ReffileJob] = []
    reffile_dirs = {n: os.path.join(out_root, "reffiles", n, "") for n in spec_by_name}
    for group in groups:
        recipe = spec_by_name[group.recipe]
        inputs, depends = [], set()
        for member, (choice, target) in zip(group.members, member_state[group.id], strict=True):
            made = produced.get((member.path, target))
            if made:
                depends.add(made[0])
            inputs.append(ReffileInput(member.role, member.path,
                                       made[1] if made else choice.start_file))
        reffile_jobs.append(ReffileJob(
            id=f"reffile-{group.id}", recipe=group.recipe, reftype=group.reftype,
            group=group.id, plugin=recipe.plugin or group.recipe, inputs=tuple(inputs),
            output=f"{reffile_dirs[group.recipe]}{safe_label(group.id)}.fits",
            depends_on=tuple(sorted(depends)), params=dict(recipe.params),
            config=config_digest,
        ))
    return reffile_jobs


def _check_clashes(jobs: Sequence[CalibrationJob]) -> None:
    """Two different exposures with the same base name would write the same files."""
    writers: dict[str, str] = {}
    for job in jobs:
        for output in job.outputs:
            other = writers.setdefault(output.path, job.exposure)
            if other != job.exposure:
                raise PlanError(
                    f"{other} and {job.exposure} have the same exposure base name and would "
                    f"both write {output.path}; keep only one of them in the inputs")


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

"""Merged calibration runs: the requested target states of one start state -> the jobs.

Identical and nested requests become one run (a target whose remaining steps, in pipeline
order, are a prefix of a longer run's is an intermediate state of that run, saved by it;
steps the pipeline records SKIPPED on the exposure by design are left out of the
comparison, :func:`neutral_steps`); :func:`apart_reasons` says why two runs stay apart;
each run's outputs, strun names and strun flags are worked out once per distinct request
(:func:`job_templates` is cached) and shared by every exposure that asks the same;
:func:`calibration_jobs` turns each exposure's :class:`Request` into its jobs. Used by
:mod:`refsmith.planning.planner`; see docs/planning.md.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refsmith.detector1.keywords import STEP_KEYWORDS, normalize_instrument
from refsmith.detector1.memory import calibration_memory, frame_shape
from refsmith.detector1.naming import safe_label, state_id
from refsmith.detector1.reftypes import STEP_REFTYPES
from refsmith.detector1.steps import (
    APPLICABILITY_KEYWORDS,
    NOT_APPLICABLE,
    SKIPPED_BY_DEFAULT,
    skip_applies,
    step_order,
)
from refsmith.errors import PlanError
from refsmith.jobs.records import CalibrationJob, ProductOutput
from refsmith.model import Exposure
from refsmith.planning.references import ReferenceResolver
from refsmith.planning.specs import FITOPT
from refsmith.planning.starts import header_of


def merge_targets(order: Sequence[str], start: frozenset[str],
                  targets: Iterable[frozenset[str]], neutral: frozenset[str] = frozenset()
                  ) -> list[tuple[tuple[str, ...], list]]:
    """Merge target states reached from one start state into as few runs as possible.

    A target whose remaining steps (pipeline order) are a prefix of a longer run's remaining
    steps is an intermediate state of that run. Steps in ``neutral`` are left out of that
    comparison: the pipeline records them SKIPPED on this exposure whether they run or not,
    and SKIPPED counts as done (:data:`refsmith.detector1.steps.NOT_APPLICABLE`, e.g.
    group_scale when NFRAMES == FRMDIVSR), so ``[dq_init]`` is on the way of
    ``superbias-`` (group_scale, dq_init, ...). Returns ``[(steps_to_run, states)]``,
    longest runs first, each listing the target states it produces (the first is the one
    whose steps the run runs).
    """
    remaining = {t: tuple(s for s in order if s in t and s not in start) for t in set(targets)}
    effective = {t: sum(s not in neutral for s in steps) for t, steps in remaining.items()}
    chains: list[tuple[tuple[str, ...], list]] = []
    for target in sorted(remaining, key=lambda t: (-effective[t], -len(remaining[t]),
                                                   remaining[t])):
        steps = remaining[target]
        for chain, states in chains:
            if place(chain, steps, neutral):
                states.append(target)
                break
        else:
            chains.append((steps, [target]))
    return chains


def place(chain: Sequence[str], steps: Sequence[str], neutral: frozenset[str] = frozenset()
          ) -> int:
    """How many steps of ``chain`` a run has done when it has reached the state whose
    remaining ``steps`` (pipeline order) are these; 0 when that state is not on the way.

    Without ``neutral`` steps: ``len(steps)`` when ``steps`` is a prefix of ``chain``. With
    them, ``steps`` and the prefix of ``chain`` must agree once neutral steps are left out,
    and the prefix takes the neutral steps of ``steps`` that follow it in ``chain``.
    """
    wanted = [s for s in steps if s not in neutral]
    cut = matched = 0
    for index, step in enumerate(chain):
        if matched == len(wanted):
            break
        if step in neutral:
            continue
        if step != wanted[matched]:
            return 0
        matched, cut = matched + 1, index + 1
    if matched < len(wanted):
        return 0
    while cut < len(chain) and chain[cut] in neutral and chain[cut] in steps:
        cut += 1
    return cut


@dataclass(frozen=True)
class JobTemplate:
    """What a job looks like apart from its exposure's names (shared by many exposures)."""

    chain: tuple[str, ...]
    start_steps: tuple[str, ...]
    skip: tuple[str, ...]
    states: tuple[frozenset[str], ...]
    final: frozenset[str]
    label: str  # <laststep>_<stateid> of the final state
    outputs: tuple[tuple[tuple[str, ...], str, str, str], ...]  # steps, kind, label, strun
    flags: tuple[str, ...]  # argv after --output_file, before the overrides
    products: tuple[frozenset[str], ...]  # the states of the outputs of kind 'product'
    # requested target -> the product state that serves it (itself, or the same state up
    # to neutral steps: the state of the run at that point)
    serves: tuple[tuple[frozenset[str], frozenset[str]], ...] = ()


@functools.lru_cache(maxsize=4096)
def job_templates(instrument: str, start: frozenset[str], targets: frozenset,
                  saves: frozenset, fitopt: frozenset, neutral: frozenset = frozenset()
                  ) -> tuple[JobTemplate, ...]:
    """The merged jobs for one start state and its requested targets, saves and fitopts;
    ``neutral``: the steps the pipeline records SKIPPED on this exposure by design (see
    :func:`merge_targets`)."""
    order = step_order(instrument)
    templates = []
    for chain, states in merge_targets(order, start, targets, neutral):
        final = states[0]

        def on_chain(state: frozenset[str], chain: tuple[str, ...] = chain
                     ) -> frozenset[str] | None:
            """The state of the run where it reaches ``state`` (None: not on the way)."""
            cut = place(chain, tuple(x for x in order if x in state - start), neutral)
            return (state & start) | frozenset(chain[:cut]) if cut else None

        serves = {state: on_chain(state) or state for state in states}
        saved = {placed for s in saves if (placed := on_chain(s)) is not None}
        products = sorted({*serves.values(), *saved}, key=lambda s: (len(s), sorted(s)))
        outputs = []
        # strun: skip every step not run, the other instrument branch's too (the pipeline
        # has them all and would ask CRDS for their references)
        every_step = (*order, *(x for x in STEP_KEYWORDS if x not in order))
        flags = [f"--steps.{x}.skip=True" for x in every_step if x not in chain]
        flags += [f"--steps.{x}.skip=False" for x in chain
                  if x in SKIPPED_BY_DEFAULT]
        for state in products:
            steps = tuple(x for x in order if x in state)
            label = f"{steps[-1]}_{state_id(steps)}"
            is_final = state == serves[final]
            strun = ("rate" if "ramp_fit" in steps else "ramp") if is_final else (
                "0_ramp_fit" if steps[-1] == "ramp_fit" else steps[-1])
            outputs.append((steps, "product", label, strun))
            if not is_final:
                flags.append(f"--steps.{steps[-1]}.save_results=True")
        placed_fitopt = {placed for s in fitopt if (placed := on_chain(s)) is not None}
        for state in sorted(placed_fitopt, key=sorted):
            steps = tuple(x for x in order if x in state)
            outputs.append((steps, FITOPT, f"{FITOPT}_{state_id(steps)}", FITOPT))
            flags.append("--steps.ramp_fit.save_opt=True")
        final_steps = tuple(x for x in order if x in serves[final])
        templates.append(JobTemplate(
            chain=chain, start_steps=tuple(x for x in order if x in start),
            skip=tuple(x for x in order if x not in chain), states=tuple(states),
            final=serves[final], label=f"{final_steps[-1]}_{state_id(final_steps)}",
            outputs=tuple(outputs), flags=tuple(flags),
            products=tuple(frozenset(o[0]) for o in outputs if o[1] == "product"),
            serves=tuple(serves.items())))
    return tuple(templates)


@dataclass
class Request:
    """Everything asked of one (exposure, start file)."""

    raw: Exposure
    start: str
    start_steps: frozenset[str]
    targets: dict[frozenset[str], set[tuple[str, str]]] = field(default_factory=dict)
    saves: set[frozenset[str]] = field(default_factory=set)
    fitopt: set[frozenset[str]] = field(default_factory=set)


def calibration_jobs(requests: Mapping[tuple[str, str], Request], store: Path,
                      base_name: Callable[[str], str], resolver: ReferenceResolver,
                      uses_self: bool, recipe_names: Sequence[str],
                      scanned: Mapping[str, Exposure] = {}
                      ) -> tuple[list[CalibrationJob],
                                 dict[tuple[str, frozenset[str]], tuple[str, str]],
                                 dict[str, str]]:
    """One job per merged run of each request; the (job id, path) of each product by
    (exposure, state); the recipe that owns each job (for the statistics).

    Each job carries its memory estimate (:func:`refsmith.detector1.memory.calibration_memory` of
    the raw exposure's NINTS, NGROUPS, SUBSIZE2 x SUBSIZE1 and the steps it runs), and
    the identity of its raw exposure and start file (a product read as a start candidate:
    ``scanned``, by path)."""
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
            instrument = normalize_instrument(raw.instrument or "")
            instruments[raw.instrument] = instrument
        base = base_name(path)
        directory = store_prefix + base  # os.path.join: no base name starts with '/'
        prefix = directory + "/"
        label = safe_label(base)
        keywords = raw.keywords
        ny, nx = frame_shape(instrument, keywords.get("SUBSIZE1"), keywords.get("SUBSIZE2"))
        identities = {path: raw.identity}
        if start != path and start in scanned:
            identities[start] = scanned[start].identity
        # steps the pipeline records SKIPPED on this exposure by design: states that
        # differ only in them are one state (asked for by several targets only)
        neutral = neutral_steps(raw) if len(request.targets) > 1 else frozenset()
        templates = job_templates(instrument, request.start_steps,
                                  frozenset(request.targets), frozenset(request.saves),
                                  frozenset(request.fitopt), neutral)
        for template in templates:
            outputs = tuple([
                ProductOutput(steps, f"{prefix}{base}_{suffix}.fits", kind,
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
            for target, state in template.serves:
                produced[(path, target)] = produced[(path, state)]
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
                memory=calibration_memory(raw.nints, raw.ngroups, ny, nx, template.chain),
                identities=identities,
            ))
            finals = {n for n, _ in request.targets[template.states[0]]}
            owners[job_id] = next(n for n in recipe_names if n in finals)
    return jobs, produced, owners


def neutral_steps(exposure: Exposure) -> frozenset[str]:
    """The steps the pipeline records SKIPPED on ``exposure`` by design, which counts as
    done (:data:`refsmith.detector1.steps.NOT_APPLICABLE`: group_scale when NFRAMES ==
    FRMDIVSR, jump with NGROUPS <= 2 ...): run or not, they leave the data as it is."""
    keywords = exposure.keywords
    key = (exposure.instrument, exposure.subarray, exposure.readpatt, exposure.ngroups,
           *(keywords.get(k) for k in APPLICABILITY_KEYWORDS))  # what the rules read
    found = _NEUTRAL.get(key)
    if found is None:
        header = header_of(exposure)
        found = _NEUTRAL[key] = frozenset(step for step in NOT_APPLICABLE
                                          if skip_applies(step, header))
    return found


_NEUTRAL: dict[tuple, frozenset[str]] = {}  # set-ups are few: 10,000 exposures, ~10 keys


def apart_reasons(jobs: Sequence[CalibrationJob], exposure: Exposure) -> list[str]:
    """Why calibration jobs of ``exposure`` from the same start file are not one job.

    For each pair, the first step (pipeline order, leaving out the steps that are
    :func:`neutral_steps` of the exposure) that one job runs and the other does not; for a
    step whose SKIPPED counts as done only on some exposures (group_scale ...), what this
    exposure's header shows.
    """
    neutral = neutral_steps(exposure)
    header = header_of(exposure)
    reasons = []
    by_start: dict[str, list[CalibrationJob]] = {}
    for job in jobs:
        by_start.setdefault(job.start_file, []).append(job)
    for same in by_start.values():
        same = sorted(same, key=lambda j: -len(j.steps_to_run))
        for index, longer in enumerate(same):
            for shorter in same[index + 1:]:
                reason = _difference(longer, shorter, neutral, header)
                if reason:
                    reasons.append(reason)
    return reasons


def _difference(a: CalibrationJob, b: CalibrationJob, neutral: frozenset[str],
                header: Mapping[str, object]) -> str:
    order = step_order(a.instrument)
    rank = {s: i for i, s in enumerate(order)}
    first = [s for s in a.steps_to_run if s not in neutral]
    second = [s for s in b.steps_to_run if s not in neutral]
    for x, y in itertools.zip_longest(first, second):
        if x != y:
            break
    else:
        return ""
    if x is None or y is None:
        return ""  # one state is on the other's way (the jobs differ in something else)
    step = x if rank[x] < rank[y] else y  # the earlier is run by one job only
    runs, skips = (a, b) if step in a.steps_to_run else (b, a)
    text = (f"{runs.id} (recipes {', '.join(runs.recipes)}) runs {step}, which "
            f"{skips.id} (recipes {', '.join(skips.recipes)}) leaves out: the states differ "
            f"by {step}")
    if step in NOT_APPLICABLE:
        keywords, _, why = NOT_APPLICABLE[step]
        shown = ", ".join(f"{k}={header.get(k, 'absent')}" for k in keywords)
        text += (f" (SKIPPED would count as done, and the states be one, only where "
                 f"{why}; this exposure has {shown})")
    return text


def _overrides(chain: Sequence[str], exposure: Exposure, resolver: ReferenceResolver
               ) -> tuple[dict[str, dict[str, str]], tuple[str, ...]]:
    """Reference overrides per step of ``chain`` and the jobs they come from."""
    overrides: dict[str, dict[str, str]] = {}
    depends: set[str] = set()
    for step in chain:
        for reftype in STEP_REFTYPES.get(step, ()):
            resolved = resolver.resolve(reftype, exposure)
            if resolved.path is not None:
                overrides.setdefault(step, {})[reftype] = resolved.path
            if resolved.depends_on:
                depends.add(resolved.depends_on)
    return overrides, tuple(sorted(depends))



def check_clashes(jobs: Sequence[CalibrationJob]) -> None:
    """Two different exposures with the same base name would write the same files."""
    writers: dict[str, str] = {}
    for job in jobs:
        for output in job.outputs:
            other = writers.setdefault(output.path, job.exposure)
            if other != job.exposure:
                raise PlanError(
                    f"{other} and {job.exposure} have the same exposure base name and would "
                    f"both write {output.path}; keep only one of them in the inputs")

"""Merged calibration runs: the requested target states of one start state -> the jobs.

Identical and nested requests become one run (a target whose remaining steps, in pipeline
order, are a prefix of a longer run's is an intermediate state of that run, saved by it);
each run's outputs, strun names and strun flags are worked out once per distinct request
(:func:`job_templates` is cached) and shared by every exposure that asks the same;
:func:`calibration_jobs` turns each exposure's :class:`Request` into its jobs. Used by
:mod:`refsmith.planning.planner`; see docs/planning.md.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refsmith.detector1.keywords import STEP_KEYWORDS, normalize_instrument
from refsmith.detector1.memory import calibration_memory, frame_shape
from refsmith.detector1.naming import safe_label, state_id
from refsmith.detector1.reftypes import STEP_REFTYPES
from refsmith.detector1.steps import SKIPPED_BY_DEFAULT, step_order
from refsmith.errors import PlanError
from refsmith.jobs.records import CalibrationJob, ProductOutput
from refsmith.model import Exposure
from refsmith.planning.references import ReferenceResolver
from refsmith.planning.specs import FITOPT


def merge_targets(order: Sequence[str], start: frozenset[str],
                  targets: Iterable[frozenset[str]]) -> list[tuple[tuple[str, ...], list]]:
    """Merge target states reached from one start state into as few runs as possible.

    A target whose remaining steps (pipeline order) are a prefix of a longer run's remaining
    steps is an intermediate state of that run. Returns ``[(steps_to_run, states)]``,
    longest runs first, each listing the target states it produces.
    """
    remaining = {t: tuple(s for s in order if s in t and s not in start) for t in set(targets)}
    chains: list[tuple[tuple[str, ...], list]] = []
    for target in sorted(remaining, key=lambda t: (-len(remaining[t]), remaining[t])):
        steps = remaining[target]
        for chain, states in chains:
            if chain[: len(steps)] == steps:
                states.append(target)
                break
        else:
            chains.append((steps, [target]))
    return chains


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


@functools.lru_cache(maxsize=4096)
def job_templates(instrument: str, start: frozenset[str], targets: frozenset,
                   saves: frozenset, fitopt: frozenset) -> tuple[JobTemplate, ...]:
    """The merged jobs for one start state and its requested targets, saves and fitopts."""
    order = step_order(instrument)
    templates = []
    for chain, states in merge_targets(order, start, targets):
        final = max(states, key=len)

        def on_chain(state: frozenset[str], chain: tuple[str, ...] = chain) -> bool:
            rest = tuple(x for x in order if x in state - start)
            return chain[: len(rest)] == rest

        products = sorted({*states, *(s for s in saves if on_chain(s))},
                          key=lambda s: (len(s), sorted(s)))
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
            is_final = state == final
            strun = ("rate" if "ramp_fit" in steps else "ramp") if is_final else (
                "0_ramp_fit" if steps[-1] == "ramp_fit" else steps[-1])
            outputs.append((steps, "product", label, strun))
            if not is_final:
                flags.append(f"--steps.{steps[-1]}.save_results=True")
        for state in sorted((s for s in fitopt if on_chain(s)), key=sorted):
            steps = tuple(x for x in order if x in state)
            outputs.append((steps, FITOPT, f"{FITOPT}_{state_id(steps)}", FITOPT))
            flags.append("--steps.ramp_fit.save_opt=True")
        final_steps = tuple(x for x in order if x in final)
        templates.append(JobTemplate(
            chain=chain, start_steps=tuple(x for x in order if x in start),
            skip=tuple(x for x in order if x not in chain), states=tuple(states), final=final,
            label=f"{final_steps[-1]}_{state_id(final_steps)}", outputs=tuple(outputs),
            flags=tuple(flags),
            products=tuple(frozenset(o[0]) for o in outputs if o[1] == "product")))
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
        templates = job_templates(instrument, request.start_steps,
                                  frozenset(request.targets), frozenset(request.saves),
                                  frozenset(request.fitopt))
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
            finals = {n for n, _ in request.targets[template.final]}
            owners[job_id] = next(n for n in recipe_names if n in finals)
    return jobs, produced, owners


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

"""Merged calibration runs: the requested target states of one start state -> the jobs.

Identical and nested requests become one run (a target whose remaining steps, in pipeline
order, are a prefix of a longer run's is an intermediate state of that run, saved by it);
each run's outputs, strun names and strun flags are worked out once per distinct request
(:func:`job_templates` is cached) and shared by every exposure that asks the same. Used by
:mod:`refsmith.planning`; see docs/planning.md.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from refsmith import steps as pipeline_steps
from refsmith.naming import state_id

FITOPT = "fitopt"


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
    order = pipeline_steps.step_order(instrument)
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
        every_step = (*order, *(x for x in pipeline_steps.STEP_KEYWORDS if x not in order))
        flags = [f"--steps.{x}.skip=True" for x in every_step if x not in chain]
        flags += [f"--steps.{x}.skip=False" for x in chain
                  if x in pipeline_steps.SKIPPED_BY_DEFAULT]
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

"""Reference-file and combine jobs: the rest of the plan's job DAG. One reference-file job per
group, one combine job per recipe x partition, where 'self' references point, and the check
that they make no cycle.

Used by :mod:`refsmith.planning.planner`; see docs/planning.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refsmith.detector1.naming import safe_label
from refsmith.errors import PlanError
from refsmith.jobs.records import CombineJob, ReffileInput, ReffileJob, StartChoice
from refsmith.model import Exposure, Group

if TYPE_CHECKING:
    from refsmith.planning.specs import RecipeSpec

# combine job id -> (recipe, partition, its groups in order)
CombineSpecs = dict[str, tuple["RecipeSpec", tuple, list[Group]]]


def partition_label(partition: Sequence[tuple[str, Any]]) -> str:
    return safe_label("-".join(str(v) for _, v in partition)) if partition else "all"



def match_partition(partition: Sequence[tuple[str, Any]], exposure: Exposure) -> bool:
    return all(str(exposure.value(k)).upper() == str(v).upper() for k, v in partition)



def combine_specs(groups: Sequence[Group], spec_by_name: Mapping[str, RecipeSpec]
                  ) -> CombineSpecs:
    """The groups of each combine job (one per recipe x partition), by job id."""
    specs: CombineSpecs = {}
    labels: dict[int, str] = {}  # groups of one partition share its tuple
    for group in groups:
        label = labels.get(id(group.partition))
        if label is None:
            label = labels[id(group.partition)] = partition_label(group.partition)
        job_id = f"combine-{group.recipe}-{label}"
        specs.setdefault(job_id, (spec_by_name[group.recipe], group.partition, []))
        specs[job_id][2].append(group)
    return specs


def combine_output(out_root: Path, recipe: str, partition: Sequence[tuple[str, Any]]) -> str:
    """The final reference file of one recipe x partition."""
    return str(out_root / "final" / recipe / f"{recipe}_{partition_label(partition)}.fits")


def self_lookup(recipes: Sequence[RecipeSpec], specs: CombineSpecs, out_root: Path
                ) -> Callable[[str, Exposure], tuple[str, str]]:
    """``(reftype, exposure) -> (final file, combine job id)`` for 'self' references."""

    def lookup(reftype: str, exposure: Exposure) -> tuple[str, str]:
        makers = sorted({r.name for r in recipes if r.rule.reftype == reftype})
        if not makers:
            raise PlanError(f"reference type {reftype!r} is 'self' but no recipe makes it "
                            f"(needed for {exposure.path})")
        if len(makers) > 1:
            raise PlanError(f"reference type {reftype!r} is 'self' but recipes "
                            f"{', '.join(makers)} all make it (needed for {exposure.path})")
        for job_id, (spec, partition, _) in sorted(specs.items()):
            if spec.name == makers[0] and match_partition(partition, exposure):
                return combine_output(out_root, spec.name, partition), job_id
        raise PlanError(f"reference type {reftype!r} is 'self' but recipe {makers[0]!r} forms "
                        f"no group matching {exposure.path} (DETECTOR={exposure.detector}, "
                        f"SUBARRAY={exposure.subarray})")

    return lookup


def reffile_jobs(groups: Sequence[Group],
                 member_state: Mapping[str, list[tuple[StartChoice, frozenset[str]]]],
                 produced: Mapping[tuple[str, frozenset[str]], tuple[str, str]],
                 spec_by_name: Mapping[str, RecipeSpec], out_root: Path, config_digest: str,
                 by_path: Mapping[str, Exposure] = {}) -> list[ReffileJob]:
    """One reference-file job per group, after the calibration jobs of its members, with
    its recipe's memory budget; each input carries its raw exposure's identity (from
    ``by_path``)."""
    reffile_jobs: list[ReffileJob] = []
    reffile_dirs = {n: os.path.join(out_root, "reffiles", n, "") for n in spec_by_name}
    for group in groups:
        recipe = spec_by_name[group.recipe]
        inputs, depends = [], set()
        for member, (choice, target) in zip(group.members, member_state[group.id], strict=True):
            made = produced.get((member.path, target))
            if made:
                depends.add(made[0])
            raw = by_path.get(member.path)
            inputs.append(ReffileInput(member.role, member.path,
                                       made[1] if made else choice.start_file,
                                       raw.identity if raw is not None else {}))
        reffile_jobs.append(ReffileJob(
            id=f"reffile-{group.id}", recipe=group.recipe, reftype=group.reftype,
            group=group.id, plugin=recipe.plugin or group.recipe, inputs=tuple(inputs),
            output=f"{reffile_dirs[group.recipe]}{safe_label(group.id)}.fits",
            depends_on=tuple(sorted(depends)), params=dict(recipe.params),
            config=config_digest, memory=recipe.memory,
        ))
    return reffile_jobs


def combine_jobs(specs: CombineSpecs, reffile_jobs: Sequence[ReffileJob], out_root: Path,
                 config_digest: str) -> list[CombineJob]:
    """One combine job per recipe x partition, after the reference-file jobs of its groups,
    with its recipe's memory budget."""
    reffile_by_group = {j.group: j for j in reffile_jobs}
    return [
        CombineJob(
            id=job_id, recipe=spec.name, reftype=spec.rule.reftype,
            plugin=spec.plugin or spec.name, partition=tuple(partition),
            inputs=tuple(reffile_by_group[g.id].output for g in members),
            output=combine_output(out_root, spec.name, partition),
            depends_on=tuple(sorted(reffile_by_group[g.id].id for g in members)),
            params=dict(spec.params), config=config_digest, memory=spec.memory,
        )
        for job_id, (spec, partition, members) in sorted(specs.items())
    ]


def check_acyclic(edges: Mapping[str, Iterable[str]]) -> None:
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

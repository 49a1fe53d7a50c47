"""Prepare one calibration job before the pipeline is built: read the start file's ``S_*``
state, INSTRUME and primary header, put the steps to run in pipeline order, check the
requested outputs against the start state, build the pipeline's ``steps=`` configuration
(skips and reference overrides), and check that off-line every reference type is given.

Every problem is a :class:`JobFailure` with a message for the user. No ``jwst`` import:
only ``astropy`` to read the header. Used by :mod:`refsmith.calibrate.runner`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refsmith.calibrate.offline import local_crds_rules_available
from refsmith.detector1.keywords import STEP_KEYWORDS
from refsmith.detector1.reftypes import STEP_REFTYPES
from refsmith.detector1.steps import step_done, step_order
from refsmith.errors import ConfigError

__all__ = [
    "STEP_REFERENCE_TYPES",
    "JobFailure",
    "RunSetup",
    "Target",
    "prepare_run",
]


# step -> reference types it asks for (jwst 3.0.0 ``Step.reference_file_types``): the one
# table in refsmith.detector1.reftypes
STEP_REFERENCE_TYPES: dict[str, tuple[str, ...]] = STEP_REFTYPES

_DONE = "COMPLETE"
_ABSENT = "absent"


class JobFailure(Exception):
    """A failure whose message is already meant for the user."""


@dataclass(frozen=True)
class Target:
    steps: frozenset[str]
    destination: Path
    ran: int  # how many of the ordered steps_to_run this state includes


@dataclass(frozen=True)
class RunSetup:
    """A checked job, ready for the pipeline to be built."""

    start: Path
    start_state: dict[str, str]  # step -> S_* value of the start file
    has_asdf: bool  # False: a plain FITS file, to open as a RampModel
    order: tuple[str, ...]  # the instrument's calwebb_detector1 steps
    run: tuple[str, ...]  # the steps to run, in pipeline order
    targets: list[Target]
    done_before: frozenset[str]  # steps the start file had already done
    step_config: dict[str, dict[str, Any]]  # ``steps=`` argument of the pipeline
    not_applicable: set[str]  # steps given an 'N/A' reference


def prepare_run(
    start_file: str,
    steps_to_run: Sequence[str],
    outputs: Sequence[tuple[Sequence[str], str]],
    overrides: Mapping[str, Mapping[str, str]],
    instrument: str | None,
    fitopt: str | None = None,
) -> RunSetup:
    """Check a job against its start file; parameters as for
    :func:`refsmith.calibrate.runner.run_calibration`.

    Raises
    ------
    JobFailure
        The job cannot run as asked (missing start file, unknown step, output state not
        reached by the run, missing reference file, ...).
    """
    start = Path(start_file)
    start_state, header_instrument, has_asdf, start_header = _read_start_state(start)
    try:
        order = step_order(instrument or header_instrument)
    except ConfigError as exc:
        raise JobFailure(f"{start}: {exc}") from None
    run = _ordered_steps(steps_to_run, order)
    targets, done_before = _targets(start, start_state, start_header, run, outputs)
    if fitopt and "ramp_fit" not in run:
        raise JobFailure(f"fitopt output {fitopt}: the job does not run ramp_fit")
    step_config = _step_config(run, order, overrides)
    if fitopt:
        step_config["ramp_fit"]["save_opt"] = True
    _check_references_available(run, overrides)
    not_applicable = {
        step for step, refs in overrides.items() if any(v == "N/A" for v in refs.values())
    }
    return RunSetup(
        start=start, start_state=start_state, has_asdf=has_asdf, order=order, run=run,
        targets=targets, done_before=done_before, step_config=step_config,
        not_applicable=not_applicable,
    )


def _read_start_state(start: Path) -> tuple[dict[str, str], str, bool, dict[str, Any]]:
    """S_* values (step -> value), INSTRUME, whether the file has an ASDF extension, and
    the primary header (keyword -> value)."""
    from astropy.io import fits

    if not start.is_file():
        raise JobFailure(f"start file {start} does not exist")
    try:
        with fits.open(start) as hdus:
            header = dict(hdus[0].header)
            has_asdf = "ASDF" in hdus
    except Exception as exc:
        raise JobFailure(f"cannot read the FITS header of {start}: {exc}") from None
    state = {
        step: str(header[keyword]).strip().upper()
        for step, keyword in STEP_KEYWORDS.items()
        if keyword in header
    }
    return state, str(header.get("INSTRUME", "")).strip(), has_asdf, header


def _ordered_steps(steps_to_run: Sequence[str], order: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(steps_to_run) - set(order))
    if unknown:
        raise JobFailure(
            f"steps {unknown} are not calwebb_detector1 steps of this instrument "
            f"(its steps: {', '.join(order)})"
        )
    if not steps_to_run:
        raise JobFailure("the job has no step to run")
    wanted = set(steps_to_run)
    return tuple(step for step in order if step in wanted)


def _targets(
    start: Path,
    start_state: Mapping[str, str],
    start_header: Mapping[str, Any],
    run: tuple[str, ...],
    outputs: Sequence[tuple[Sequence[str], str]],
) -> tuple[list[Target], frozenset[str]]:
    """Validate the requested outputs; return them and the start file's done steps."""
    if not outputs:
        raise JobFailure("the job has no output")
    again = [s for s in run if start_state.get(s) == _DONE]
    if again:
        raise JobFailure(
            f"{start} already has {', '.join(again)} COMPLETE; running a step twice "
            "corrupts the data, so the job refuses (check the plan's start state)"
        )
    states = [frozenset(steps) for steps, _ in outputs]
    final = [state for state in states if set(run) <= state]
    if not final:
        raise JobFailure(
            f"no output has the final state (every step of {list(run)} done); outputs: "
            f"{[sorted(s) for s in states]}"
        )
    done_before = final[0] - set(run)
    claimed = [s for s in sorted(done_before)
               if not step_done(s, start_state.get(s), start_header)]
    if claimed:
        raise JobFailure(
            f"the target state says {', '.join(claimed)} done before this job, but {start} "
            f"records {', '.join(f'{s}={start_state.get(s, _ABSENT)}' for s in claimed)}"
        )
    extra = [s for s, v in start_state.items() if v == _DONE and s not in done_before]
    if extra:
        raise JobFailure(
            f"{start} already has {', '.join(sorted(extra))} COMPLETE, which the target "
            "state leaves out"
        )
    resolved_start = start.resolve()
    targets = []
    for state, (_, destination) in zip(states, outputs, strict=True):
        ran = len(state & set(run))
        if state != done_before | set(run[:ran]) or ran == 0:
            raise JobFailure(
                f"output {destination}: state {sorted(state)} is not reached by this run "
                f"(the start file's done steps {sorted(done_before)} plus the first steps of "
                f"{list(run)})"
            )
        path = Path(destination).absolute()
        if path.resolve() == resolved_start:
            raise JobFailure(f"output {destination} would overwrite the start file")
        targets.append(Target(state, path, ran))
    if len({t.destination for t in targets}) != len(targets):
        raise JobFailure("two outputs of the job have the same destination")
    return targets, done_before


def _step_config(
    run: tuple[str, ...],
    order: Sequence[str],
    overrides: Mapping[str, Mapping[str, str]],
) -> dict[str, dict[str, Any]]:
    """``steps=`` argument of the pipeline: skips, overrides; nothing saved by the pipeline."""
    unknown = sorted(set(overrides) - set(STEP_REFERENCE_TYPES))
    if unknown:
        raise JobFailure(f"overrides name unknown steps {unknown}")
    config: dict[str, dict[str, Any]] = {}
    for step in STEP_REFERENCE_TYPES:
        config[step] = {"skip": step not in run or step not in order, "save_results": False}
    for step, refs in overrides.items():
        for reftype, value in refs.items():
            value = str(value)
            if value != "N/A" and step in run and not Path(value).is_file():
                raise JobFailure(
                    f"reference file for step {step}, type {reftype} not found: {value}"
                )
            config[step][f"override_{reftype}"] = value
    return config


def _check_references_available(
    run: tuple[str, ...], overrides: Mapping[str, Mapping[str, str]]
) -> None:
    """Off-line (no CRDS rules in the cache), every reference type must be overridden."""
    if local_crds_rules_available():
        return
    missing = {
        step: [t for t in STEP_REFERENCE_TYPES[step] if t not in overrides.get(step, {})]
        for step in run
    }
    missing = {step: types for step, types in missing.items() if types}
    if missing:
        listing = "; ".join(f"{step}: {', '.join(types)}" for step, types in missing.items())
        raise JobFailure(
            "CRDS is off-line (serverless, no CRDS rules in the cache), so every reference "
            f"type of a step that runs must be given as a file or 'N/A'; missing: {listing}"
        )


"""Run one calibration job with the real calwebb_detector1, in-process and atomically.

A calibration job takes one file (raw, or a product of an earlier job) to one or more
target states. :func:`run_calibration` runs ``Detector1Pipeline`` once with every step not
in ``steps_to_run`` skipped and the job's reference overrides on every step, saves the
product of each requested state (the final one and any intermediate ones the run passes
through), puts back the ``S_*`` keywords of the steps the start file had already done (the
pipeline rewrites skipped steps as SKIPPED), checks every product's ``S_*`` state against
its target, and only then renames the products into place. It never raises for a job
failure: the result says what went wrong and where the log is. Checking the job against its
start file and building the pipeline's step configuration is :mod:`refsmith.calibrate.setup`.

``jwst`` is imported inside the functions, so planning never pays for it; call
:func:`import_pipeline` once in a long-lived worker (after :mod:`refsmith.calibrate.offline` set-up
when off-line).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from refsmith.calibrate.setup import (
    STEP_REFERENCE_TYPES,
    JobFailure,
    Target,
    prepare_run,
)
from refsmith.detector1.keywords import STEP_KEYWORDS
from refsmith.detector1.steps import state_problems
from refsmith.jobs.log import LOGGER_NAMES, job_log
from refsmith.jobs.result import CalibrationResult
from refsmith.util.files import (
    disk_full_error,
    disk_full_message,
    ignore_disk_full,
    write_temporary,
)

__all__ = [
    "LOGGER_NAMES",
    "STEP_REFERENCE_TYPES",
    "import_pipeline",
    "run_calibration",
]

log = logging.getLogger(__name__)

# step -> attribute of ``model.meta.cal_step`` (the schema calls dark_current 'dark_sub')
_CAL_STEP_ATTRIBUTE: dict[str, str] = {s: s for s in STEP_KEYWORDS} | {
    "dark_current": "dark_sub"
}


def import_pipeline(freeze_gc: bool = True) -> type:
    """Import ``Detector1Pipeline`` (once per process), load asdf's extensions, return the class.

    Parameters
    ----------
    freeze_gc : bool, optional
        Move everything allocated so far to the permanent generation (``gc.freeze()``).
        stpipe calls ``gc.collect()`` at every step; without the ~1 GB of imported objects
        to scan, an in-process run of a small file is several times faster. Use it in
        long-lived workers.

    Returns
    -------
    type
        ``jwst.pipeline.Detector1Pipeline``.
    """
    from jwst.pipeline import Detector1Pipeline
    from stdatamodels.jwst import datamodels

    # the first datamodel of a process loads every asdf extension (entry points, their
    # YAML manifests): 2-3.5 s measured, paid here once rather than by the first job
    datamodels.RampModel((1, 1, 2, 2)).close()
    if freeze_gc:
        gc.collect()
        gc.freeze()
    return Detector1Pipeline


def run_calibration(
    start_file: str,
    steps_to_run: Sequence[str],
    outputs: Sequence[tuple[Sequence[str], str]],
    overrides: Mapping[str, Mapping[str, str]],
    log_path: str,
    *,
    instrument: str | None = None,
    fitopt: str | None = None,
) -> CalibrationResult:
    """Run calwebb_detector1 on one file and write the requested products atomically.

    Parameters
    ----------
    start_file : str
        The input: a raw exposure or a product of an earlier job. Never modified.
    steps_to_run : sequence of str
        The steps this job runs (any order; run in pipeline order). Every other step is
        skipped, including those the start file has already done.
    outputs : sequence of (sequence of str, str)
        ``(complete step set of a state, destination path)``: the final state, plus any
        intermediate state to keep. Each state must be the start file's done steps plus a
        prefix (in pipeline order) of ``steps_to_run``; the final state is the one with all
        of them. A product after ramp_fit is the exposure-level rate image.
    overrides : mapping of str to mapping of str to str
        ``step -> {reftype: path or 'N/A'}``, passed as ``override_<reftype>`` to that
        step. The pipeline looks references up per step, so a type used by several steps
        (gain: jump, ramp_fit, gain_scale) must be given on each.
    log_path : str
        File the job's log records are appended to (created with its directory).
    instrument : str, optional
        INSTRUME, for the step order; read from the start file when not given.
    fitopt : str, optional
        Where to keep ramp_fit's optional results product (``save_opt``; the job must
        run ramp_fit). Written atomically like the others, before the final product.

    Returns
    -------
    CalibrationResult
        ``ok`` and the output paths, or ``ok=False`` with the error. Exceptions of the
        pipeline, and ``SystemExit`` (crds exits on a fatal configuration error), are
        caught and reported; nothing with a final name is left behind on failure.
    """
    started = time.perf_counter()
    temporaries: list[Path] = []
    published: list[str] = []
    with contextlib.ExitStack() as stack:
        stack.push(ignore_disk_full)  # a log that cannot be flushed at its end (disk full)
        try:
            last_error = stack.enter_context(job_log(Path(log_path)))
        except OSError as exc:
            full = disk_full_error(exc)
            return CalibrationResult(
                ok=False, outputs=(), log_path=str(log_path),
                error=(f"cannot write the job log: {disk_full_message(full, log_path)}" if full
                       else f"cannot write the job log {log_path}: {exc.strerror or exc}"),
                seconds=time.perf_counter() - started,
            )
        log.info("refsmith job: %s -> run %s; outputs %s", start_file, list(steps_to_run),
                 [dest for _, dest in outputs])
        try:
            published = _run(start_file, steps_to_run, outputs, overrides, instrument,
                             temporaries, fitopt)
            error = ""
        except JobFailure as exc:
            error = str(exc)
            log.error("job failed: %s", error)
        except (Exception, SystemExit) as exc:
            error = _describe(exc, Path(start_file).name, last_error)
            log.error("job failed: %s\n%s", error, traceback.format_exc())
        finally:
            for temporary in temporaries:
                with contextlib.suppress(OSError):
                    temporary.unlink()
        seconds = time.perf_counter() - started
        if not error:
            log.info("job done in %.2f s: %s", seconds, published)
    return CalibrationResult(
        ok=not error,
        outputs=tuple(published) if not error else (),
        error=error,
        log_path=str(log_path),
        seconds=seconds,
    )


def _describe(exc: BaseException, start_name: str, last_error: list[str]) -> str:
    full = disk_full_error(exc)
    if full is not None:
        return (f"calwebb_detector1 on {start_name}: "
                f"{disk_full_message(full, 'an output directory')}")
    step = getattr(exc, "_refsmith_step", None)
    where = f" in step {step}" if step else ""
    if isinstance(exc, SystemExit):
        text = f"the pipeline exited (SystemExit {exc.code!r}) on {start_name}{where}"
    else:
        text = f"calwebb_detector1 failed on {start_name}{where}: {type(exc).__name__}: {exc}"
    if last_error and last_error[-1] not in text:
        text += f"; last error logged: {last_error[-1]}"
    return text


def _run(
    start_file: str,
    steps_to_run: Sequence[str],
    outputs: Sequence[tuple[Sequence[str], str]],
    overrides: Mapping[str, Mapping[str, str]],
    instrument: str | None,
    temporaries: list[Path],
    fitopt: str | None = None,
) -> list[str]:
    setup = prepare_run(start_file, steps_to_run, outputs, overrides, instrument, fitopt)
    start, start_state, run, order = setup.start, setup.start_state, setup.run, setup.order
    targets, done_before = setup.targets, setup.done_before

    pipeline_class = import_pipeline(freeze_gc=False)
    pipeline_input: Any = str(start)
    if not setup.has_asdf:
        # stdatamodels cannot open a plain FITS file (e.g. ground-test data) by name
        from stdatamodels.jwst import datamodels

        pipeline_input = datamodels.RampModel(str(start))
    config, config_file = pipeline_class.build_config(pipeline_input, steps=setup.step_config)
    config.pop("class", None)
    pipeline = pipeline_class.from_config_section(
        config, name=config.get("name") or None, config_file=config_file
    )
    pipeline.save_results = False

    written: dict[Path, Path] = {}  # destination -> temporary

    def publish(model: Any, target: Target) -> None:
        temporary = _write_checked(model, target, start_state, done_before, run,
                                   setup.not_applicable, order)
        temporaries.append(temporary)
        written[target.destination] = temporary

    by_ran: dict[int, list[Target]] = {}
    for target in targets:
        by_ran.setdefault(target.ran, []).append(target)
    for index, name in enumerate(run, start=1):
        _instrument_step(getattr(pipeline, name), name, by_ran.get(index, []), index == len(run),
                         publish)
    fitopt_written: list[Path] = []
    if fitopt:
        _capture_fitopt(pipeline.ramp_fit, Path(fitopt).absolute(), temporaries,
                        fitopt_written)

    try:
        result = pipeline.run(pipeline_input)
    finally:
        if not isinstance(pipeline_input, str):
            pipeline_input.close()
    try:
        if result is None:
            raise JobFailure("calwebb_detector1 returned no product (ramp_fit returned None)")
        for target in by_ran.get(len(run), []):
            publish(result, target)
    finally:
        if hasattr(result, "close"):
            result.close()

    # All products are complete and checked: give them their final names, intermediate
    # states first, so that a final product on disk implies its intermediates are there.
    published = []
    if fitopt:
        if not fitopt_written:
            raise JobFailure(f"ramp_fit made no optional results product for {fitopt}")
        os.replace(fitopt_written[0], fitopt)
        temporaries.remove(fitopt_written[0])
        published.append(str(Path(fitopt).absolute()))
    for target in sorted(targets, key=lambda t: t.ran):
        os.replace(written[target.destination], target.destination)
        temporaries.remove(written[target.destination])
        published.append(str(target.destination))
    return published


def _instrument_step(step: Any, name: str, targets: list[Target], last: bool,
                     publish: Any) -> None:
    """Wrap ``step.run`` to name the failing step and save intermediate products."""
    original = step.run

    def run(*args: Any) -> Any:
        try:
            result = original(*args)
        except BaseException as exc:
            if not hasattr(exc, "_refsmith_step"):
                exc._refsmith_step = name  # type: ignore[attr-defined]
            raise
        if targets and not last:
            model = result[0] if isinstance(result, tuple) else result
            if model is None:
                raise JobFailure(f"step {name} returned no product")
            for target in targets:
                publish(model, target)
        return result

    step.run = run


def _capture_fitopt(step: Any, destination: Path, temporaries: list[Path],
                    written: list[Path]) -> None:
    """Make ``step.save_model`` (ramp_fit) write its ``fitopt`` product to a temporary
    file for ``destination`` instead of the pipeline's own name; other suffixes go on."""
    original = step.save_model

    def save_model(model: Any, suffix: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if suffix != "fitopt":
            return original(model, suffix, *args, **kwargs)
        temporary = _write_temporary(model, destination)
        temporaries.append(temporary)
        written.append(temporary)
        return [str(destination)]

    step.save_model = save_model


def _write_temporary(model: Any, destination: Path) -> Path:
    """Write ``model`` (named ``destination``) to a temporary file beside it, synced."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        model.meta.filename = destination.name
        # to_fits on a stream keeps meta.filename (a path would set the temporary name)
        return write_temporary(destination,
                               lambda stream: model.to_fits(stream, overwrite=True),
                               suffix=".part", sync=True)
    except Exception as exc:  # astropy may fail again cleaning up: look for the cause
        full = disk_full_error(exc)
        if full is None:
            raise
        raise JobFailure(f"cannot write {destination.name}: "
                         f"{disk_full_message(full, destination.parent)}") from exc


def _write_checked(
    model: Any,
    target: Target,
    start_state: Mapping[str, str],
    done_before: frozenset[str],
    run: tuple[str, ...],
    not_applicable: set[str],
    order: Sequence[str],
) -> Path:
    """Restore done steps' S_*, write ``model`` under a temporary name, check it; return it."""
    from astropy.io import fits

    for step in done_before:
        setattr(model.meta.cal_step, _CAL_STEP_ATTRIBUTE[step], start_state[step])
    destination = target.destination
    temporary = _write_temporary(model, destination)
    try:
        header = fits.getheader(temporary, 0)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    problems = state_problems(header, target.steps, order,
                              exact={s: start_state[s] for s in done_before},
                              not_applicable=not_applicable)
    if problems:
        temporary.unlink()
        raise JobFailure(
            f"output {destination.name} does not have its target state: "
            + "; ".join(problems)
        )
    return temporary

"""Run a reference-file job or a combine job with its plug-in (what executors call).

The framework's part: find the plug-in, merge and validate its parameters (plug-in
defaults < the recipe's ``params`` < ``--param recipe.key=value``), log to the job's log,
let the plug-in write under a temporary name in the destination directory, add metadata
defaults and provenance (HISTORY), validate, and ``os.replace`` into place. A file that
fails validation goes to ``<run>/rejected/`` with a ``.reason.txt``; nothing is ever left
at the final path after a failure. The functions never raise for a job failure.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from refsmith.jobs.log import job_log
from refsmith.jobs.records import CombineJob, ReffileJob
from refsmith.jobs.result import CalibrationResult
from refsmith.plugins.base import param_problems
from refsmith.plugins.blocks import memory_budget
from refsmith.plugins.inputs import load_group
from refsmith.plugins.metadata import (
    PROVENANCE_PREFIX,
    add_history,
    data_used,
    earliest_start,
    fill_metadata,
    input_exposures,
    params_digest,
    setup_from_header,
    software_versions,
)
from refsmith.plugins.registry import PluginNotFoundError, load_plugin
from refsmith.plugins.validate import (
    PIPELINE_CHECKS,
    ReferenceFileInvalid,
    check_datamodel,
    check_with_pipeline,
)
from refsmith.util.files import disk_full_error, disk_full_message, ignore_disk_full

__all__ = ["ParameterError", "merge_params", "rejected_path", "run_combine_job",
           "run_reffile_job"]

log = logging.getLogger(__name__)


class ParameterError(ValueError):
    """The merged parameters of a recipe do not validate (message names the key)."""


class _Failure(Exception):
    """A job failure whose message is meant for the user."""


class _ConfigFailure(_Failure):
    """A failure of the recipe's configuration: trying again cannot help."""


def merge_params(plugin: type, recipe: str, config_params: Mapping[str, Any],
                 overrides: Mapping[str, Any] = {}) -> Any:
    """Validate plug-in defaults < config ``params`` < command-line overrides.

    ``overrides`` keys are ``key`` or ``recipe.key`` (keys of other recipes are ignored).

    Raises
    ------
    ParameterError
        Naming each bad key, where it came from and why (``refsmith plan`` reports the
        same problems, from :func:`.base.param_problems`, with the config's file:line).
    """
    params, problems = param_problems(plugin.Params, recipe, config_params, overrides)
    if problems:
        raise ParameterError(f"recipe '{recipe}': " + "; ".join(map(str, problems)))
    return params


def rejected_path(destination: Path) -> Path:
    """``<run>/rejected/<reffiles|final>/<recipe>/<name>`` for a run-directory output."""
    kind_dir = destination.parent.parent
    if kind_dir.name in ("reffiles", "final"):
        return kind_dir.parent / "rejected" / kind_dir.name / destination.parent.name / \
            destination.name
    return destination.parent / "rejected" / destination.name


def _scratch(destination: Path, tag: str) -> Path:
    return destination.parent / f".{destination.stem}.{tag}.{uuid.uuid4().hex[:8]}.fits"


def _execute(kind: str, job: Any, log_path: str, overrides: Mapping[str, Any],
             produce: Callable[[Any, Any, Path], tuple[list[str], list[str], Any]]
             ) -> CalibrationResult:
    started = time.perf_counter()
    destination = Path(job.output).absolute()
    temporaries: list[Path] = []
    with contextlib.ExitStack() as stack:
        stack.push(ignore_disk_full)  # a log that cannot be flushed at its end (disk full)
        try:
            stack.enter_context(job_log(Path(log_path)))
        except OSError as exc:
            full = disk_full_error(exc)
            return CalibrationResult(False, (), (
                f"cannot write the job log: {disk_full_message(full, log_path)}" if full else
                f"cannot write the job log {log_path}: {exc.strerror or exc}"),
                str(log_path), 0.0)
        log.info("refsmith %s job %s: recipe %s, plug-in %s -> %s", kind, job.id,
                 job.recipe, job.plugin, destination)
        error, permanent = "", False
        try:
            plugin = _plugin(job)
            params = merge_params(plugin, job.recipe, job.params, overrides)
            log.info("parameters: %s", params.model_dump(by_alias=True))
            destination.parent.mkdir(parents=True, exist_ok=True)
            written = _scratch(destination, "plugin")
            temporaries.append(written)
            with memory_budget(getattr(job, "memory", 0)):
                history, exposures, model = produce(plugin, params, written)
            history += data_used(exposures)
            if model is None:
                model = _open_written(written, job, log_path)
            final = _scratch(destination, "final")
            temporaries.append(final)
            try:
                _finalize(model, final, plugin, params, job, history)
            finally:
                getattr(model, "close", lambda: None)()
                model = None  # its arrays are freed before the file is validated
            _validate_or_reject(final, destination, plugin.reftype, params, exposures, job)
            os.replace(final, destination)
            log.info("wrote %s", destination)
        except (ParameterError, _Failure) as exc:
            error, permanent = str(exc), isinstance(exc, ParameterError | _ConfigFailure)
            log.error("job failed: %s", error)
        except PluginNotFoundError as exc:
            error, permanent = f"recipe '{job.recipe}': {exc}", True
            log.error("job failed: %s", error)
        except (Exception, SystemExit) as exc:
            full = disk_full_error(exc, destination.parent)  # partial files still there
            error = (f"recipe '{job.recipe}': {job.id} cannot write its output: "
                     f"{disk_full_message(full, destination.parent)}" if full else
                     f"recipe '{job.recipe}': plug-in '{job.plugin}' failed on {job.id}: "
                     f"{type(exc).__name__}: {exc} (log: {log_path})")
            log.error("job failed: %s\n%s", error, traceback.format_exc())
        finally:
            for temporary in temporaries:
                with contextlib.suppress(OSError):
                    temporary.unlink()
        if error:
            with contextlib.suppress(OSError):
                destination.unlink()  # never leave an older file at the final path
    seconds = time.perf_counter() - started
    return CalibrationResult(ok=not error, outputs=() if error else (str(destination),),
                             error=error, log_path=str(log_path), seconds=seconds,
                             permanent=permanent)


def _plugin(job: Any) -> type:
    plugin = load_plugin(job.plugin)
    if job.reftype and str(job.reftype).lower() != str(plugin.reftype).lower():
        raise _ConfigFailure(f"recipe '{job.recipe}' makes reftype '{job.reftype}' but "
                             f"plug-in '{job.plugin}' makes '{plugin.reftype}'")
    return plugin


def _open_written(written: Path, job: Any, log_path: str) -> Any:
    """The datamodel the plug-in wrote to its ``output_path``."""
    from stdatamodels.jwst import datamodels

    if not written.is_file() or written.stat().st_size == 0:
        raise _Failure(f"recipe '{job.recipe}': plug-in '{job.plugin}' wrote nothing "
                       f"to its output_path (log: {log_path})")
    try:
        return datamodels.open(str(written))
    except Exception as exc:
        raise _Failure(f"recipe '{job.recipe}': plug-in '{job.plugin}' wrote a file that is "
                       f"not a datamodel: {type(exc).__name__}: {exc}") from None


def _finalize(model: Any, final: Path, plugin: type, params: Any, job: Any,
              history: list[str]) -> None:
    """Add metadata defaults and HISTORY to the plug-in's model, write it to ``final``."""
    if not hasattr(model, "to_fits"):
        raise _Failure(f"recipe '{job.recipe}': plug-in '{job.plugin}' returned "
                       f"{type(model).__name__}, not a datamodel")
    setup, useafter = history_setup(job)
    fill_metadata(model, reftype=plugin.reftype, params=params,
                  default_description=getattr(plugin, "description", "") or
                  f"{plugin.reftype} made by refsmith plug-in {plugin.name}",
                  setup=setup, useafter=useafter)
    dumped = params.model_dump(mode="json", by_alias=True)
    versions = " ".join(f"{k}={v}" for k, v in software_versions().items())
    add_history(model, [
        f"{PROVENANCE_PREFIX} {job.id}: recipe {job.recipe}, plug-in {job.plugin} "
        f"({plugin.__module__}:{plugin.__qualname__}), reftype {plugin.reftype}",
        *history,
        f"{PROVENANCE_PREFIX} params sha1:{params_digest(dumped)} {json.dumps(dumped)}",
        *([f"{PROVENANCE_PREFIX} config {job.config}"] if job.config else []),
        f"{PROVENANCE_PREFIX} software {versions}",
    ])
    model.meta.filename = Path(job.output).name
    with open(final, "wb") as stream:
        model.to_fits(stream, overwrite=True)


def history_setup(job: Any) -> tuple[dict[str, Any], str | None]:
    """Setup attributes and default USEAFTER of a job, from its first input's header."""
    from astropy.io import fits

    paths = [i.path for i in job.inputs] if isinstance(job, ReffileJob) else list(job.inputs)
    headers = [fits.getheader(p, 0) for p in paths if Path(p).is_file()]
    if not headers:
        return {}, None
    return setup_from_header(headers[0]), earliest_start(headers)


def _validate_or_reject(final: Path, destination: Path, reftype: str, params: Any,
                        exposures: list[str], job: Any) -> None:
    mode = params.validate_with
    try:
        if mode == "none":
            return
        check_datamodel(final, reftype)
        if mode == "pipeline":
            if reftype.lower() not in PIPELINE_CHECKS:
                log.warning("no pipeline validation for reftype %s; datamodel check only",
                            reftype)
            elif not exposures:
                raise ReferenceFileInvalid("no raw exposure recorded to validate it on")
            else:
                check_with_pipeline(final, reftype, exposures[0])
                log.info("pipeline validation passed on %s", exposures[0])
    except ReferenceFileInvalid as exc:
        target = rejected_path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(final), str(target))
        reason = f"{job.id}: {exc}"
        Path(f"{target}.reason.txt").write_text(reason + "\n", encoding="utf-8")
        raise _Failure(f"recipe '{job.recipe}': {destination.name} failed validation and was "
                       f"moved to {target}: {exc}") from None


def run_reffile_job(job: ReffileJob, log_path: str, *,
                    param_overrides: Mapping[str, Any] = {}) -> CalibrationResult:
    """Make one individual reference file from a group with the recipe's plug-in.

    Parameters
    ----------
    job : ReffileJob
        Its ``inputs`` are the group's calibrated files.
    log_path : str
        The job's log (appended to).
    param_overrides : mapping
        ``--param`` values (``key`` or ``recipe.key`` -> value), over the config's.

    Returns
    -------
    CalibrationResult
        ``ok`` with ``outputs == (job.output,)``, or ``ok=False`` and the error.
    """
    def produce(plugin: type, params: Any, written: Path) -> tuple[list[str], list[str], Any]:
        group = load_group(job.recipe, job.group,
                           [(i.role, i.exposure, i.path) for i in job.inputs],
                           memory=getattr(job, "memory", 0))
        history = [
            f"{PROVENANCE_PREFIX} input {i.role} | file={i.path} | raw={i.exposure} | "
            f"state={','.join(f'{s}={v}' for s, v in i.steps.items()) or 'raw'}"
            for i in group.inputs
        ]
        model = plugin().make(group, params, str(written))
        return history, [i.exposure for i in group.inputs], model

    return _execute("reference-file", job, log_path, param_overrides, produce)


def run_combine_job(job: CombineJob, log_path: str, *,
                    param_overrides: Mapping[str, Any] = {}) -> CalibrationResult:
    """Combine a recipe's individual files of one partition into the final file.

    Same contract as :func:`run_reffile_job`; ``job.inputs`` are the individual files. The
    final file's HISTORY lists every individual file.
    """
    def produce(plugin: type, params: Any, written: Path) -> tuple[list[str], list[str], Any]:

        missing = [p for p in job.inputs if not Path(p).is_file()]
        if missing:
            raise _Failure(f"recipe '{job.recipe}': individual files missing: {missing}")
        exposures = [e for path in job.inputs for e in input_exposures(path)]
        history = [f"{PROVENANCE_PREFIX} combined {len(job.inputs)} individual files "
                   f"({params.combine})"]
        history += [f"{PROVENANCE_PREFIX} individual | file={p}" for p in job.inputs]
        model = plugin().combine(list(job.inputs), params, str(written))
        return history, exposures, model

    return _execute("combine", job, log_path, param_overrides, produce)

"""What runs inside a worker process (local pool or Dask): set-up once, then jobs.

:func:`run_task` is the single entry point an executor sends work to. It never raises:
whatever happens (a pipeline exception, ``SystemExit`` from crds, a missing plug-in), it
returns a result record with ``ok`` False and a message meant for the user. The first
task in a process sets the process up (:func:`prepare_worker`): off-line CRDS or a bounded
CRDS timeout, then ``import jwst`` once (and asdf's extensions), the plug-ins' compiled
loops, and ``gc.freeze()``. Each result carries the
process's peak resident memory during the job (``peak_rss``, Linux).

Besides the plan's kinds (calibration, reffile, combine) there is ``probe``: hold
``job['bytes']`` bytes for ``job['seconds']`` seconds, with no set-up (tests of
scheduling and of ``peak_rss``; a quick check that workers run).
"""

from __future__ import annotations

import gc
import os
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from refsmith.util.files import disk_full_error, disk_full_message, is_disk_full_message
from refsmith.util.memory import keep_freed_memory, peak_rss, reset_peak_rss, resident_memory

__all__ = ["WorkerSettings", "prepare_worker", "run_task"]

PLUGINS_MISSING = "reference-file plug-ins are not available in this version"


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker process sets itself up (picklable, sent with every task).

    Attributes
    ----------
    offline : bool
        Configure off-line CRDS in ``crds_path`` before importing jwst.
    crds_path : str
        CRDS cache directory used off-line ('' = leave the environment as it is).
    crds_timeout : float
        Bound, in seconds, on each CRDS request when CRDS is used.
    freeze_gc : bool
        ``gc.freeze()`` after importing the pipeline (several times faster on small files).
    param_overrides : mapping
        ``recipe.key`` (or ``key``) -> value from ``--param``: the last word on a plug-in's
        parameters, after its defaults and the config's ``params``.
    eager_setup : bool
        Local workers set themselves up as soon as they start (False: at their first
        calibration, reffile or combine job; e.g. workers that only run probes).
    """

    offline: bool = False
    crds_path: str = ""
    crds_timeout: float = 30.0
    freeze_gc: bool = True
    param_overrides: Mapping[str, Any] = field(default_factory=dict, hash=False)
    eager_setup: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_prepared: WorkerSettings | None = None
_prepare_error = ""
_lock = threading.Lock()  # one job at a time per process (the job log uses global loggers)


def prepare_worker(settings: WorkerSettings) -> str:
    """Set this process up for running jobs (once); return '' or the set-up error.

    Parameters
    ----------
    settings : WorkerSettings
        Off-line CRDS or bounded timeout, gc freezing.

    Returns
    -------
    str
        An error message when the process cannot run jobs (every job then fails with it).
    """
    global _prepared, _prepare_error
    if _prepared is not None:
        return _prepare_error
    try:
        if settings.offline and settings.crds_path:
            from refsmith.calibrate.offline import configure_offline

            configure_offline(Path(settings.crds_path))
        elif not settings.offline:
            from refsmith.calibrate.offline import bounded_crds_timeout

            bounded_crds_timeout(settings.crds_timeout)
        from refsmith.calibrate.runner import import_pipeline

        import_pipeline(freeze_gc=settings.freeze_gc)
        from refsmith.plugins.kernels import warm

        warm()  # the built-ins' compiled loops, from numba's cache (compiled once a machine)
        keep_freed_memory()  # big arrays reused, not page-faulted in again; see memory.py
        _prepare_error = ""
    except (Exception, SystemExit) as exc:
        full = disk_full_error(exc)
        _prepare_error = ("worker set-up failed: " + (
            disk_full_message(full, settings.crds_path or ".") if full
            else f"{type(exc).__name__}: {exc}"))
    _prepared = settings
    return _prepare_error


def run_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one job described by ``task``; never raises.

    Parameters
    ----------
    task : mapping
        ``id``, ``kind`` (calibration, reffile, combine), ``job`` (the job's ``to_dict()``),
        ``log_path`` and ``settings`` (:class:`WorkerSettings` as a dict).

    Returns
    -------
    dict
        ``id``, ``ok``, ``outputs``, ``error``, ``log_path``, ``seconds``, ``rss`` (bytes,
        after the job, freed memory given back), ``peak_rss`` (the process's peak
        resident memory during the job, bytes; None where it cannot be measured) and
        ``pid``; ``permanent`` True when retrying cannot help; ``disk_full`` True when the
        job failed for lack of space (its error says ``no space left on device (path)``).
    """
    started = time.perf_counter()
    log_path = str(task.get("log_path", ""))
    measured = False
    with _lock:
        try:
            settings = WorkerSettings(**dict(task.get("settings", {})))
            kind = str(task["kind"])
            error = prepare_worker(settings) if kind != "probe" else ""
            measured = reset_peak_rss()
            if error:
                result: dict[str, Any] = {"ok": False, "outputs": [], "error": error}
            else:
                result = _dispatch(kind, task["job"], log_path, settings.param_overrides)
        except (Exception, SystemExit) as exc:
            full = disk_full_error(exc)
            result = {"ok": False, "outputs": [],
                      "error": (disk_full_message(full, log_path or ".") if full else
                                f"{type(exc).__name__}: {exc}"),
                      "traceback": traceback.format_exc()}
            append_log(log_path, result["traceback"])
        if not result.get("ok") and is_disk_full_message(str(result.get("error") or "")):
            result["disk_full"] = True  # the DAG loop stops the run: see execute.dag
        peak = peak_rss() if measured else None
        gc.collect()  # datamodels are freed with their reference cycles (gc is frozen)
    result.update(id=task.get("id"), log_path=result.get("log_path") or log_path,
                  rss=resident_memory(), peak_rss=peak, pid=os.getpid())
    result.setdefault("seconds", time.perf_counter() - started)
    return result


def _dispatch(kind: str, job: Mapping[str, Any], log_path: str,
              param_overrides: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "calibration":
        return _calibration(job, log_path)
    if kind in ("reffile", "combine"):
        return _plugin(kind, job, log_path, param_overrides)
    if kind == "probe":
        return _probe(job)
    return {"ok": False, "outputs": [], "error": f"unknown job kind {kind!r}"}


def _probe(job: Mapping[str, Any]) -> dict[str, Any]:
    """Hold ``job['bytes']`` bytes (every page touched) for ``job['seconds']`` seconds."""
    held = bytearray(int(job.get("bytes", 0)))
    held[::4096] = b"\x01" * len(range(0, len(held), 4096))  # make every page resident
    time.sleep(float(job.get("seconds", 0.0)))
    del held
    return {"ok": True, "outputs": [], "error": ""}


def _calibration(data: Mapping[str, Any], log_path: str) -> dict[str, Any]:
    from refsmith.calibrate.runner import run_calibration
    from refsmith.jobs.records import CalibrationJob

    job = CalibrationJob.from_dict(data)
    fitopt = [o.path for o in job.outputs if o.kind == "fitopt"]
    unsupported = [o.path for o in job.outputs if o.kind not in ("product", "fitopt")]
    if unsupported or len(fitopt) > 1:
        message = (f"outputs this version cannot produce: {unsupported or fitopt} (kinds: "
                   "one 'product' per state, at most one 'fitopt')")
        append_log(log_path, message)
        return {"ok": False, "outputs": [], "error": message, "permanent": True}
    from refsmith.calibrate.products import input_changes
    from refsmith.util.identity import file_identity

    problem = input_changes(job.identities)
    if problem:
        return _changed(problem, log_path)
    # what the job reads, the raw exposure with its content digest (for the provenance)
    inputs = {path: file_identity(path, digest=path == job.exposure)
              for path in dict.fromkeys([job.exposure, job.start_file])}
    result = run_calibration(
        job.start_file, job.steps_to_run,
        [(o.steps, o.path) for o in job.outputs if o.kind == "product"], job.overrides,
        log_path, instrument=job.instrument or None, fitopt=fitopt[0] if fitopt else None,
    )
    return _result_dict(result) | {"inputs": inputs}


def _changed(problem: str, log_path: str) -> dict[str, Any]:
    """A job's failure: one of its inputs is not what the plan saw (retrying cannot help)."""
    message = (f"{problem} since the plan was made: not used; run again to plan with the "
               "files as they are now")
    append_log(log_path, message)
    return {"ok": False, "outputs": [], "error": message, "permanent": True}


def _plugin(kind: str, data: Mapping[str, Any], log_path: str,
            param_overrides: Mapping[str, Any]) -> dict[str, Any]:
    name = "run_reffile_job" if kind == "reffile" else "run_combine_job"
    try:
        import refsmith.plugins as plugins

        function = getattr(plugins, name)
    except (ImportError, AttributeError) as exc:
        message = f"{PLUGINS_MISSING} (refsmith.plugins.{name}: {exc})"
        append_log(log_path, message)
        return {"ok": False, "outputs": [], "error": message, "permanent": True}
    from refsmith.jobs.records import CombineJob, ReffileJob

    job = ReffileJob.from_dict(data) if kind == "reffile" else CombineJob.from_dict(data)
    if kind == "reffile":
        from refsmith.calibrate.products import reffile_input_changes

        problem = reffile_input_changes(job.inputs)
        if problem:
            return _changed(problem, log_path)
    return _result_dict(function(job, log_path, param_overrides=dict(param_overrides)))


def _result_dict(result: Any) -> dict[str, Any]:
    return {"ok": bool(result.ok), "outputs": list(result.outputs), "error": result.error,
            "log_path": result.log_path, "seconds": result.seconds,
            # a configuration error (no such plug-in, bad parameters): never retried
            **({"permanent": True} if getattr(result, "permanent", False) else {})}


def append_log(log_path: str, text: str) -> None:
    """Append ``text`` to a job's log file (nothing when there is none or it cannot be
    written: the job's result says what happened anyway)."""
    if not log_path:
        return
    try:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(text.rstrip("\n") + "\n")
    except OSError:
        pass

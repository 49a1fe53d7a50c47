"""``refsmith run``: plan, write the run directory, then execute the DAG, resumably.

:func:`run` takes the run-directory lock, builds the plan (as ``refsmith plan``),
supersedes calibrated products that no longer match (another jwst version, changed
reference files, ``--force-redo``), checks off-line reference files, records the jobs in
the store, decides from the files on disk (not only from the store) which jobs are
already done (:mod:`refsmith.execute.resume`), and runs the rest with the local or the Dask
executor.

Provenance: every product a calibration job writes gets a sidecar
``<product>.provenance.json`` (jwst version, reference files with their size and
modification time, the configured ``pipeline.references`` values, the job). A product
whose sidecar disagrees with the current installation or configuration is renamed
``<name>.fits.superseded`` before planning, so the plan makes it again; a product
without a sidecar (made by hand or by another tool) is trusted as it is.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from refsmith.calibrate.products import (
    check_offline_references,
    installed_jwst_version,
    outputs_valid,
    provenance,
    provenance_path,
    stale_reason,
    store_products_of,
    store_products_used,
    supersede,
    write_json,
)
from refsmith.errors import ConfigError, RefsmithError
from refsmith.execute.base import Notice, NoWorkersError
from refsmith.execute.dag import DagOutcome, Node, execute_dag
from refsmith.execute.progress import Reporter, sigterm_as_interrupt
from refsmith.execute.resume import ForceRedo, job_nodes, keep_earlier_products
from refsmith.execute.store import FINISHED, JobStore, RunLock, StoreWriteError
from refsmith.execute.worker import WorkerSettings
from refsmith.jobs.records import CalibrationJob
from refsmith.util.files import (
    disk_full_error,
    disk_full_message,
    disk_full_stops,
    remove_files,
    stale_temporaries,
)
from refsmith.util.memory import default_max_memory, parse_memory

__all__ = [
    "RunOptions",
    "RunSummary",
    "check_offline_references",
    "outputs_valid",
    "parse_memory",
    "provenance_path",
    "run",
    "status",
]

@dataclass(frozen=True)
class RunOptions:
    """Command-line choices of ``refsmith run`` (None: take the config's value).

    Attributes
    ----------
    run_dir : str, optional
        Run directory (default ``<output.root>/<output.run>``).
    executor : str, optional
        ``local`` or ``dask``.
    workers : int, optional
        Local worker processes (or Dask LocalCluster / jobqueue workers).
    retries : int, optional
        Extra attempts of a failing job.
    max_memory : str, optional
        Memory the run's jobs may use together on this machine, e.g. ``20GiB``.
    recycle_memory : str, optional
        Resident memory per worker after which it is replaced, e.g. ``4GiB``.
    max_jobs : int, optional
        Start at most this many jobs in this run.
    force_redo : str, optional
        ``calibration``, ``reffiles`` or ``all``: redo jobs whose outputs exist.
    dry_run : bool
        Plan and write the run directory only.
    offline : bool, optional
        Never contact CRDS (every reference type from the config).
    scheduler : str, optional
        Dask scheduler address (``tcp://host:8786``).
    use_cache : bool
        Use the header cache when planning.
    progress : str
        ``auto`` (bar on a terminal, lines otherwise), ``bar``, ``lines`` or ``none``.
    progress_interval : float
        Seconds between plain progress lines.
    params : mapping
        Plug-in parameters from ``--param recipe.key=value`` (they win over the config).
    report : bool
        Write ``report.html`` into the run directory at the end.
    """

    run_dir: str | None = None
    executor: str | None = None
    workers: int | None = None
    retries: int | None = None
    max_memory: str | None = None
    recycle_memory: str | None = None
    max_jobs: int | None = None
    force_redo: ForceRedo = None
    dry_run: bool = False
    offline: bool | None = None
    scheduler: str | None = None
    use_cache: bool = True
    progress: str = "auto"
    progress_interval: float = 10.0
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    report: bool = True


@dataclass
class RunSummary:
    """What ``refsmith run`` did."""

    run_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    blocked: list[dict[str, str]] = field(default_factory=list)
    executed: int = 0
    retried: int = 0
    lost_workers: int = 0
    superseded: list[dict[str, str]] = field(default_factory=list)  # path, reason
    dry_run: bool = False
    stopped_early: bool = False
    seconds: float = 0.0
    jobs: int = 0
    report: str = ""
    report_error: str = ""
    timed_out: int = 0
    stopped: str = ""  # why the run stopped before its end (disk full), '' otherwise
    cleaned: list[str] = field(default_factory=list)  # stale temporaries removed

    @property
    def exit_code(self) -> int:
        """0 all done (or dry run), 1 some job failed or is blocked, or the run stopped
        (e.g. the disk is full)."""
        failed = self.counts.get("failed") or self.counts.get("blocked")
        return 1 if failed or self.stopped else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir), "jobs": self.jobs, "counts": self.counts,
            "executed": self.executed, "retried": self.retried,
            "lost_workers": self.lost_workers, "failures": self.failures,
            "blocked": self.blocked, "superseded": self.superseded, "dry_run": self.dry_run,
            "stopped_early": self.stopped_early, "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code, "report": self.report,
            "report_error": self.report_error, "timed_out": self.timed_out,
            "stopped": self.stopped, "cleaned": self.cleaned,
        }


# ---------------------------------------------------------------- small helpers


# ---------------------------------------------------------------- the run


def _memory_options(config: Any, options: RunOptions) -> tuple[int | None, int | None]:
    """``max_memory`` and ``recycle_memory`` in bytes (the command line's, else the
    config's; None when neither gives one)."""
    execution = config.execution
    return (parse_memory(options.max_memory or execution.max_memory, "max_memory"),
            parse_memory(options.recycle_memory or execution.recycle_memory, "recycle_memory"))


def job_timeout(config: Any, kind: str, recipe: str | None = None) -> float:
    """A job's time limit in seconds (0 = none): ``recipes.<recipe>.timeout`` for its
    reference-file and combine jobs, else ``execution.timeout.<kind>``."""
    if kind in ("reffile", "combine") and recipe in config.recipes:
        own = config.recipes[recipe].timeout
        if own is not None:
            return float(own)
    return float(getattr(config.execution.timeout, kind, 0.0) or 0.0)


def _with_timeouts(config: Any, nodes: Sequence[Node]) -> list[Node]:
    return [replace(node, timeout=job_timeout(config, node.kind, node.job.get("recipe")))
            for node in nodes]


RUN_DIR_FILES = ("plan.json", "catalog.ecsv", "groups.ecsv", "leftovers.ecsv", "report.html")
"""Files refsmith writes (through temporaries) at the top of a run directory."""


def stale_run_temporaries(run_dir: Path, plan: Any, store_dir: Path) -> list[Path]:
    """Temporaries an interrupted run left (kill -9, a killed or timed-out worker).

    Only names refsmith writes (:mod:`refsmith.util.files`), only in this run directory (its
    own files; ``reffiles/<recipe>/`` and ``final/<recipe>/``: any refsmith temporary, the
    run lock keeps these to this run) and beside the calibrated products of this plan
    (those it makes and those it reuses, with their provenance sidecars; there only
    temporaries whose writer's pid is gone from this host, as the store is shared).
    """
    found = stale_temporaries(run_dir, targets=RUN_DIR_FILES, exclusive=True)
    for kind in ("reffiles", "final"):
        with contextlib.suppress(OSError):
            for sub in sorted((run_dir / kind).iterdir()):
                if sub.is_dir() and not sub.is_symlink():
                    found += stale_temporaries(sub, exclusive=True)
    targets: dict[Path, set[str]] = {}
    products = [Path(o.path) for job in plan.calibration.calibration_jobs for o in job.outputs]
    for product in [*products, *store_products_used(plan, store_dir)]:
        targets.setdefault(product.parent, set()).update(
            (product.name, provenance_path(product).name))
    for directory, names in sorted(targets.items()):
        found += stale_temporaries(directory, targets=names)
    return found


def _executor(config: Any, options: RunOptions, settings: WorkerSettings,
              notice: Notice) -> Any:
    execution = config.execution
    kind = options.executor or execution.executor
    workers = options.workers or (None if execution.workers == "auto" else execution.workers)
    max_memory, recycle_memory = _memory_options(config, options)
    if kind == "local":
        if options.scheduler:
            raise ConfigError("--scheduler is only used with --executor dask")
        from refsmith.execute.local import LocalExecutor, default_workers

        workers = workers or default_workers()
        return LocalExecutor(workers, settings,
                             max_memory=max_memory or default_max_memory(workers),
                             recycle_memory=recycle_memory, notice=notice)
    if kind == "dask":
        from refsmith.execute.dask import DaskExecutor

        return DaskExecutor(scheduler=options.scheduler or execution.scheduler,
                            cluster=execution.cluster, workers=workers,
                            max_memory=max_memory, notice=notice,
                            no_worker_timeout=float(execution.no_worker_timeout or 0.0))
    raise ConfigError(f"unknown executor {kind!r} (local or dask)")


def _plan(config: Any, inputs: Sequence[str], run_dir: Path, options: RunOptions,
          store_dir: Path, summary: RunSummary) -> Any:
    from refsmith.plan import build_plan

    force_calibration = options.force_redo in ("calibration", "all")
    references = dict(config.pipeline.references)
    jwst_version = installed_jwst_version()

    def replan() -> Any:
        return build_plan(config, inputs, run_dir=str(run_dir), use_cache=options.use_cache,
                          params=options.params)

    plan = replan()
    if force_calibration:
        stale = {p: "--force-redo" for p in store_products_of(plan, store_dir)}
        if stale:
            summary.superseded += supersede(stale)
            plan = replan()
    for _ in range(5):  # a superseded product may reveal an older one that is stale too
        reasons = {p: stale_reason(p, references, jwst_version)
                   for p in store_products_used(plan, store_dir)}
        stale = {p: reason for p, reason in reasons.items() if reason}
        if not stale:
            break
        summary.superseded += supersede(stale)
        plan = replan()
    return plan


def run(config: Any, inputs: Sequence[str] = (), options: RunOptions | None = None,
        *, stream: Any = None) -> RunSummary:
    """Plan and execute: ``refsmith run``.

    Parameters
    ----------
    config : refsmith.config.Config
        The validated configuration.
    inputs : sequence of str
        Inputs added to the config's ``inputs.paths``.
    options : RunOptions, optional
        Command-line choices.
    stream : file, optional
        Where progress goes (default: stderr).

    Returns
    -------
    RunSummary
        Job counts by state, failures with their log paths; ``exit_code``.

    Raises
    ------
    RunLockedError
        Another run holds the run directory.
    PlanError, ConfigError
        The plan cannot be executed (e.g. a missing reference file off-line).
    KeyboardInterrupt
        Ctrl-C or SIGTERM: the workers are stopped and no job is left ``running``.
    """
    from refsmith.plan import output_root, run_dir_for
    from refsmith.plan_files import write_run_dir

    options = options or RunOptions()
    stream = stream if stream is not None else sys.stderr
    started = time.perf_counter()
    started_at = time.time()
    if options.max_jobs is not None and options.max_jobs < 1:
        raise ConfigError("--max-jobs must be >= 1")
    if options.workers is not None and options.workers < 1:
        raise ConfigError("--workers must be >= 1")
    _memory_options(config, options)  # a bad --max-memory is an error even with nothing to run
    retries = config.execution.retries if options.retries is None else options.retries
    if retries < 0:
        raise ConfigError("--retries must be >= 0")
    offline = config.pipeline.offline if options.offline is None else options.offline
    root = output_root(config)
    store_dir = root / "calibrated"
    run_dir = run_dir_for(config, options.run_dir)
    summary = RunSummary(run_dir=run_dir, dry_run=options.dry_run)
    settings = WorkerSettings(
        offline=offline, crds_path=str(root / "crds") if offline else "",
        crds_timeout=float(config.pipeline.crds_timeout),
        param_overrides=dict(options.params),
    )

    lock = RunLock(run_dir)
    with lock.held(), sigterm_as_interrupt():
        if not options.dry_run:
            _check_writable(store_dir, "the calibrated-products store (<output.root>/calibrated)")
        plan = _plan(config, inputs, run_dir, options, store_dir, summary)
        calibration_jobs = list(plan.calibration.calibration_jobs)
        if offline:
            calibration_jobs = check_offline_references(calibration_jobs)
        # what a killed run left under temporary names (the lock says none runs now)
        summary.cleaned += map(str, remove_files(stale_run_temporaries(run_dir, plan,
                                                                       store_dir)))
        with disk_full_stops(run_dir):
            write_run_dir(plan)
        reffile_jobs = plan.calibration.reffile_jobs
        combine_jobs = plan.calibration.combine_jobs
        summary.jobs = len(calibration_jobs) + len(reffile_jobs) + len(combine_jobs)
        if options.dry_run:
            summary.counts = {"pending": summary.jobs}
            summary.seconds = time.perf_counter() - started
            return summary

        logs = run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with JobStore(run_dir / "store.sqlite") as store:
            store.recover()
            previous = {r.id: r for r in store.jobs()}
            nodes = job_nodes(calibration_jobs, reffile_jobs, combine_jobs, previous, logs,
                              options.force_redo, dict(config.pipeline.references))
            nodes = _with_timeouts(config, nodes)
            store.sync_plan((n.id, n.kind, n.depends_on, n.log_path) for n in nodes)
            keep_earlier_products(store, previous, {n.id for n in nodes})
            made_here = {p for r in previous.values() if r.state in FINISHED for p in r.outputs}
            for product in sorted(store_products_used(plan, store_dir)):
                if str(product) not in made_here and product.is_file():
                    store.add_cached(f"cached:{product.name}", [str(product)])
            version = installed_jwst_version()
            store.set_meta("run", {"started": time.time(), "jwst": version,
                                   "offline": offline, "config": plan.config_source})
            store.record_run({"started": started_at, "ended": None, "jobs": summary.jobs})
            on_success = _make_on_success(dict(config.pipeline.references), version)
            todo = [n for n in nodes if n.state not in FINISHED]
            outcome = DagOutcome(states={n.id: n.state for n in nodes})
            with Reporter(len(nodes), options.progress, options.progress_interval,
                           stream) as reporter:
                if todo:
                    executor = _executor(config, options, settings, reporter.notice)
                    executor.start()
                    stopped, began = "", time.time()
                    try:
                        outcome = execute_dag(
                            nodes, store, executor, settings.to_dict(), retries=retries,
                            max_jobs=options.max_jobs,
                            progress=reporter if options.progress != "none" else None,
                            on_success=on_success)
                    except (StoreWriteError, NoWorkersError) as error:
                        stopped = str(error)  # disk full, no worker: stop, store consistent
                    finally:
                        executor.shutdown()
                        # what killed (timed-out, interrupted) workers left
                        summary.cleaned += map(str, remove_files(
                            stale_run_temporaries(run_dir, plan, store_dir)))
                    if stopped:
                        with contextlib.suppress(StoreWriteError):  # else: the next run's
                            store.recover()
                        outcome.stopped = stopped
                        outcome.executed = sum(1 for a in store.attempts()
                                               if (a["started"] or 0) >= began)
                else:
                    for node in nodes:
                        store.set_state(node.id, node.state)
            summary.executed = outcome.executed
            summary.retried = outcome.retried
            summary.lost_workers = outcome.lost_workers
            summary.timed_out = outcome.timed_out
            summary.stopped_early = outcome.stopped_early
            summary.stopped = outcome.stopped
            summary.counts = store.counts()
            for record in store.jobs(in_plan_only=True):
                if record.state == "failed":
                    summary.failures.append({"id": record.id, "error": record.error,
                                             "log": record.log_path})
                elif record.state == "blocked":
                    summary.blocked.append({"id": record.id, "reason": record.error})
            summary.seconds = time.perf_counter() - started
            try:
                ended = time.time()
                store.set_meta("last_run", summary.to_dict() | {"ended": ended})
                store.record_run({
                    "started": started_at, "ended": ended, "seconds": round(summary.seconds, 3),
                    "jobs": summary.jobs, "executed": summary.executed,
                    "failed": summary.counts.get("failed", 0), "counts": summary.counts,
                    "stopped": summary.stopped})
            except StoreWriteError as error:
                summary.stopped = summary.stopped or str(error)
    if options.report:
        from refsmith.report.build import build_report

        try:
            summary.report = str(build_report(run_dir))
        except RefsmithError as error:  # the run's results stand; say why there is no report
            summary.report_error = str(error)
        except OSError as error:  # e.g. no space left for report.html
            full = disk_full_error(error)
            summary.report_error = (f"cannot write {run_dir / 'report.html'}: "
                                    + (disk_full_message(full, run_dir) if full
                                       else str(error.strerror or error)))
    summary.seconds = time.perf_counter() - started
    return summary


def _check_writable(directory: Path, what: str) -> None:
    """ConfigError naming ``directory`` unless a file can be made in it (created if need be):
    every job would otherwise fail alike, one after the other."""
    import tempfile

    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write {what} {directory}: {exc.strerror or exc}") from None


def _make_on_success(references: Mapping[str, str], jwst_version: str) -> Any:
    def on_success(node: Node, completion: Any) -> str:
        outputs = [Path(p) for p in completion.result.get("outputs", [])]
        missing = [str(p) for p in outputs if not p.is_file()]
        if missing:
            return f"the job reported outputs that are not on disk: {missing}"
        if node.kind != "calibration":
            expected = node.job.get("output")
            if expected and not Path(expected).is_file():
                return f"the job finished but its output {expected} is not on disk"
            return ""
        job = CalibrationJob.from_dict(node.job)
        for output in job.outputs:
            product = Path(output.path)
            if not product.is_file():
                return f"the job finished but its output {product} is not on disk"
        for output in job.outputs:
            product = Path(output.path)
            try:
                write_json(provenance_path(product),
                           provenance(job, product, output.steps, references, jwst_version,
                                      completion.result.get("inputs")))
            except OSError as exc:  # a product without provenance would be trusted later
                for made in job.outputs:
                    Path(made.path).unlink(missing_ok=True)
                full = disk_full_error(exc, product.parent)
                why = (f"{full.strerror.lower()} ({product.parent})" if full is not None
                       else str(exc.strerror or exc))
                return f"cannot write the provenance of {product.name}: {why}"
        return ""

    return on_success


# ---------------------------------------------------------------- status


def status(run_dir: str | Path, *, tail: int = 15) -> dict[str, Any]:
    """The state of a run directory (``refsmith status``), readable during a run.

    Parameters
    ----------
    run_dir : str or Path
        The run directory.
    tail : int
        Lines of each failed job's log to include.

    Returns
    -------
    dict
        ``run_dir``, ``active`` (who holds the run directory now, e.g. ``pid 12 on host
        (refsmith run)``, or None), ``counts`` (per state), ``jobs`` (records with
        durations, the number of ``executions`` and ``peak_rss``: the worker's peak
        resident memory during the job's last measured execution, bytes or None),
        ``failures`` (with ``log_tail``), ``last_run`` (summary of the last run). When no
        run is active, jobs a stopped run left ``running`` are ``interrupted``.

    Raises
    ------
    RefsmithError
        No job store in ``run_dir``, or one that cannot be read (names the file).
    """
    from refsmith.report.rundata import log_tail

    directory = Path(run_dir).expanduser().resolve()
    path = directory / "store.sqlite"
    try:
        with JobStore(path, readonly=True) as store:
            records = store.jobs()
            counts = store.counts()
            last_run = store.meta("last_run")
            attempts = store.attempts()
    except sqlite3.Error as exc:
        raise RefsmithError(f"{path}: the job store cannot be read ({exc})") from None
    active = RunLock(directory).holder()
    if active is None and counts.get("running"):  # a killed run: nothing runs them
        records = [replace(r, state="interrupted") if r.state == "running" else r
                   for r in records]
        counts = {**counts, "running": 0, "interrupted": counts["running"]}
    executions = Counter(a["job"] for a in attempts)
    peaks = {a["job"]: a["peak_rss"] for a in attempts if a["peak_rss"] is not None}
    jobs = [r.to_dict() | {"executions": executions.get(r.id, 0), "peak_rss": peaks.get(r.id)}
            for r in records if r.in_plan]
    failures = []
    for record in records:
        if record.in_plan and record.state == "failed":
            failures.append({"id": record.id, "error": record.error, "log": record.log_path,
                             "log_tail": log_tail(record.log_path, lines=tail)})
    return {"run_dir": str(directory), "active": active, "counts": counts, "jobs": jobs,
            "failures": failures, "last_run": last_run}

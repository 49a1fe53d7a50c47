"""``refsmith run``: plan, write the run directory, then execute the DAG, resumably.

:func:`run` takes the run-directory lock, builds the plan (as ``refsmith plan``),
supersedes calibrated products that no longer match (another jwst version, changed
reference files, ``--force-redo``), checks off-line reference files, records the jobs in
the store, decides from the files on disk (not only from the store) which jobs are
already done, and runs the rest with the local or the Dask executor.

Provenance: every product a calibration job writes gets a sidecar
``<product>.provenance.json`` (jwst version, reference files with their size and
modification time, the configured ``pipeline.references`` values, the job). A product
whose sidecar disagrees with the current installation or configuration is renamed
``<name>.fits.superseded`` before planning, so the plan makes it again; a product
without a sidecar (made by hand or by another tool) is trusted as it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from refsmith.errors import ConfigError, PlanError, RefsmithError
from refsmith.execute.dag import DagOutcome, Node, execute_dag
from refsmith.execute.worker import WorkerSettings
from refsmith.jobs import CalibrationJob
from refsmith.store import FINISHED, JobStore, RunLock

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

ForceRedo = Literal["calibration", "reffiles", "all"] | None
PROVENANCE_SCHEMA = "refsmith.provenance/1"
SUPERSEDED_SUFFIX = ".superseded"
# Types a step does its work without (N/A off-line when no file is configured); MIRI
# rscd/reset likewise have nothing to do outside MIRI.
_OPTIONAL_WHEN_MISSING = {"rscd": frozenset({"rscd"}), "reset": frozenset({"reset"})}


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
    superseded: list[str] = field(default_factory=list)
    dry_run: bool = False
    stopped_early: bool = False
    seconds: float = 0.0
    jobs: int = 0
    report: str = ""
    report_error: str = ""

    @property
    def exit_code(self) -> int:
        """0 all done (or dry run), 1 some job failed or is blocked."""
        return 1 if self.counts.get("failed") or self.counts.get("blocked") else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir), "jobs": self.jobs, "counts": self.counts,
            "executed": self.executed, "retried": self.retried,
            "lost_workers": self.lost_workers, "failures": self.failures,
            "blocked": self.blocked, "superseded": self.superseded, "dry_run": self.dry_run,
            "stopped_early": self.stopped_early, "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code, "report": self.report,
            "report_error": self.report_error,
        }


# ---------------------------------------------------------------- small helpers


_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "KIB": 1024, "M": 1000**2, "MB": 1000**2,
          "MIB": 1024**2, "G": 1000**3, "GB": 1000**3, "GIB": 1024**3, "T": 1000**4,
          "TB": 1000**4, "TIB": 1024**4}


def parse_memory(text: str | None) -> int | None:
    """``'4GiB'`` -> bytes (``None`` stays None). Units B, KB/KiB, MB/MiB, GB/GiB, TB/TiB."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)\s*", str(text).upper())
    if not match or match.group(2) not in _UNITS:
        raise ConfigError(f"max_memory must look like '4GiB' or '500MB', got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _jwst_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jwst")
    except PackageNotFoundError:
        return "not installed"


def _header_state(path: Path) -> dict[str, Any] | None:
    from astropy.io import fits

    try:
        return dict(fits.getheader(path, 0))
    except Exception:
        return None


def outputs_valid(job: CalibrationJob) -> bool:
    """Whether every output of ``job`` is on disk with exactly its target ``S_*`` state.

    A step of the state must be COMPLETE, or SKIPPED where the pipeline skips it by design
    for this exposure (:func:`refsmith.steps.expected_statuses`) or where the job passes
    its reference as N/A; every other step must be SKIPPED or absent.
    """
    from refsmith.steps import STEP_KEYWORDS, expected_statuses, step_order

    not_applicable = {s for s, refs in job.overrides.items()
                      if any(str(v) == "N/A" for v in refs.values())}
    try:
        order = step_order(job.instrument)
    except RefsmithError:
        return False
    for output in job.outputs:
        path = Path(output.path)
        if not path.is_file():
            return False
        if output.kind != "product":
            continue
        header = _header_state(path)
        if header is None:
            return False
        for step in order:
            keyword = STEP_KEYWORDS[step]
            value = str(header[keyword]).strip().upper() if keyword in header else None
            if step in output.steps:
                allowed = set(expected_statuses(step, header))
                if step in not_applicable:
                    allowed.add("SKIPPED")
            else:
                allowed = {None, "SKIPPED"}
            if value not in allowed:
                return False
    return True


# ---------------------------------------------------------------- provenance


def provenance_path(product: str | Path) -> Path:
    """The provenance sidecar of a calibrated product."""
    path = Path(product)
    stem = re.sub(r"\.fits(\.gz)?$", "", path.name, flags=re.IGNORECASE)
    return path.with_name(stem + ".provenance.json")


def _file_identity(path: str) -> dict[str, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _provenance(job: CalibrationJob, product: Path, steps: Sequence[str],
                config_references: Mapping[str, str], jwst_version: str) -> dict[str, Any]:
    ran = [s for s in job.steps_to_run if s in steps]
    references = {f"{s}.{rt}": str(v) for s in ran
                  for rt, v in sorted(job.overrides.get(s, {}).items())}
    files = sorted({v for v in references.values() if v != "N/A"})
    from refsmith.steps import STEP_REFTYPES

    reftypes = sorted({rt for s in ran for rt in STEP_REFTYPES.get(s, ())})
    return {
        "schema": PROVENANCE_SCHEMA,
        "product": str(product),
        "exposure": job.exposure,
        "steps": list(steps),
        "start_file": job.start_file,
        "steps_run": ran,
        "job": job.id,
        "jwst": jwst_version,
        "references": references,
        "reference_files": {f: _file_identity(f) for f in files},
        "config_references": {rt: config_references.get(rt, "crds") for rt in reftypes},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _stale_reason(product: Path, config_references: Mapping[str, str],
                  jwst_version: str) -> str:
    """Why a product's sidecar disagrees with now ('' = it agrees, or has no sidecar)."""
    sidecar = provenance_path(product)
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if data.get("jwst") != jwst_version:
        return f"made with jwst {data.get('jwst')}, now {jwst_version}"
    for path, identity in dict(data.get("reference_files", {})).items():
        if _file_identity(path) != identity:
            return f"reference file {path} changed or is gone"
    for reftype, value in dict(data.get("config_references", {})).items():
        if config_references.get(reftype, "crds") != value:
            return (f"pipeline.references.{reftype} is now "
                    f"{config_references.get(reftype, 'crds')!r}, was {value!r}")
    return ""


def _supersede(paths: Sequence[Path]) -> list[str]:
    moved = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, path.with_name(path.name + SUPERSEDED_SUFFIX))
            moved.append(str(path))
        sidecar = provenance_path(path)
        with contextlib.suppress(FileNotFoundError):
            os.replace(sidecar, sidecar.with_name(sidecar.name + SUPERSEDED_SUFFIX))
    return moved


def _store_products_used(plan: Any, store_dir: Path) -> set[Path]:
    """Calibrated-store products the plan reads (start files, reffile inputs)."""
    produced = {o.path for j in plan.calibration.calibration_jobs for o in j.outputs}
    used = {j.start_file for j in plan.calibration.calibration_jobs}
    used |= {i.path for j in plan.calibration.reffile_jobs for i in j.inputs}
    store = store_dir.resolve()
    return {Path(p) for p in used - produced if Path(p).resolve().is_relative_to(store)}


def _store_products_of(plan: Any, store_dir: Path) -> set[Path]:
    """Every product in the calibrated store of the plan's exposures (--force-redo)."""
    from refsmith.naming import product_base

    bases = {re.sub(r"_uncal\.fits(\.gz)?$", "", Path(e.path).name) for e in plan.catalog.exposures}
    found: set[Path] = set()
    for base in bases:
        directory = store_dir / base
        if directory.is_dir():
            found |= {p for p in directory.iterdir() if product_base(p.name) == base}
    return found


# ---------------------------------------------------------------- off-line references


def check_offline_references(jobs: Sequence[CalibrationJob]) -> list[CalibrationJob]:
    """Complete the jobs' overrides for an off-line run, or raise PlanError.

    Off-line, CRDS chooses nothing: every reference type of a step that runs must be a
    configured file. A type the step does its work without (refpix/sirskernel outside
    NIRSpec IRS2, the superbias of saturation, clean_flicker_noise's flat/pastasoss,
    MIRI rscd/reset) is passed as ``N/A``. Any other missing type is an error naming the
    type and the step: required ones (gain/readnoise of jump and ramp_fit) always; the
    others because the step would silently record SKIPPED and do nothing.

    Returns
    -------
    list of CalibrationJob
        The jobs with ``N/A`` added where allowed.
    """
    from refsmith.steps import OPTIONAL_REFTYPES, REQUIRED_REFTYPES, STEP_REFTYPES

    missing: dict[tuple[str, str], list[str]] = {}
    completed = []
    for job in jobs:
        overrides = {s: dict(r) for s, r in job.overrides.items()}
        for step in job.steps_to_run:
            optional = OPTIONAL_REFTYPES.get(step, frozenset()) | _OPTIONAL_WHEN_MISSING.get(
                step, frozenset())
            for reftype in STEP_REFTYPES.get(step, ()):
                if reftype in overrides.get(step, {}):
                    continue
                if reftype in optional and reftype not in REQUIRED_REFTYPES.get(step, ()):
                    overrides.setdefault(step, {})[reftype] = "N/A"
                else:
                    missing.setdefault((reftype, step), []).append(Path(job.exposure).name)
        completed.append(CalibrationJob.from_dict({**job.to_dict(), "overrides": overrides}))
    if missing:
        lines = []
        for (reftype, step), exposures in sorted(missing.items()):
            required = reftype in REQUIRED_REFTYPES.get(step, ())
            kind = "requires" if required else "needs"
            hint = "" if required else f" (or 'N/A' to let {step} be skipped)"
            lines.append(f"step {step} {kind} reference type {reftype}: set "
                         f"pipeline.references.{reftype} to a file or glob{hint}; "
                         f"{len(exposures)} job(s), e.g. {exposures[0]}")
        raise PlanError("off-line mode (no CRDS), missing reference files:\n  "
                        + "\n  ".join(lines))
    return completed


# ---------------------------------------------------------------- progress


class _Reporter:
    """Progress: a rich bar on a terminal, periodic plain lines otherwise."""

    def __init__(self, total: int, mode: str, interval: float, stream: Any) -> None:
        self.total = total
        self.stream = stream
        self.interval = interval
        self.started = time.monotonic()
        self.last_line = 0.0
        self.last_counts: Counter[str] = Counter()
        if mode == "auto":
            mode = "bar" if getattr(stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self._bar: Any = None
        self._task: Any = None
        self._initial = 0

    def __enter__(self) -> _Reporter:
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                "[progress.description]{task.description}", BarColumn(),
                MofNCompleteColumn(), "{task.fields[rate]}", TimeElapsedColumn(), "ETA",
                TimeRemainingColumn(), console=Console(file=self.stream), transient=False)
            self._bar.start()
            self._task = self._bar.add_task("jobs", total=self.total, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, states: Mapping[str, str]) -> None:
        counts = Counter(states.values())
        finished = counts["done"] + counts["cached"] + counts["failed"] + counts["blocked"]
        if not self.last_counts:
            self._initial = finished
        self.last_counts = counts
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (finished - self._initial) / elapsed
        if self.mode == "bar" and self._bar is not None:
            description = (f"{counts['done'] + counts['cached']} done, {counts['failed']} "
                           f"failed, {counts['running']} running")
            self._bar.update(self._task, completed=finished, description=description,
                             rate=f"{rate * 60:.1f} jobs/min")
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self.last_line >= self.interval or finished == self.total:
                self.last_line = now
                self.line(counts, finished, rate)

    def line(self, counts: Mapping[str, int], finished: int, rate: float) -> None:
        left = self.total - finished
        eta = f"{left / rate:.0f} s" if rate > 0 and left else "-"
        self.stream.write(
            f"[{time.monotonic() - self.started:7.1f} s] {finished}/{self.total} finished: "
            f"{counts.get('done', 0)} done, {counts.get('cached', 0)} cached, "
            f"{counts.get('failed', 0)} failed, {counts.get('blocked', 0)} blocked, "
            f"{counts.get('running', 0)} running; {rate * 60:.1f} jobs/min; ETA {eta}\n")
        self.stream.flush()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C (clean store), in the main thread only."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


# ---------------------------------------------------------------- the run


def _executor(config: Any, options: RunOptions, settings: WorkerSettings) -> Any:
    execution = config.execution
    kind = options.executor or execution.executor
    workers = options.workers or (None if execution.workers == "auto" else execution.workers)
    max_memory = parse_memory(options.max_memory or execution.max_memory)
    if kind == "local":
        if options.scheduler:
            raise ConfigError("--scheduler is only used with --executor dask")
        from refsmith.execute.local import LocalExecutor, default_workers

        return LocalExecutor(workers or default_workers(), settings, max_memory=max_memory)
    if kind == "dask":
        from refsmith.execute.dask import DaskExecutor

        return DaskExecutor(scheduler=options.scheduler or execution.scheduler,
                            cluster=execution.cluster, workers=workers,
                            max_memory=max_memory)
    raise ConfigError(f"unknown executor {kind!r} (local or dask)")


def _plan(config: Any, inputs: Sequence[str], run_dir: Path, options: RunOptions,
          store_dir: Path, summary: RunSummary) -> Any:
    from refsmith.plan import build_plan

    force_calibration = options.force_redo in ("calibration", "all")
    references = dict(config.pipeline.references)
    jwst_version = _jwst_version()
    plan = build_plan(config, inputs, run_dir=str(run_dir), use_cache=options.use_cache)
    if force_calibration:
        stale = sorted(_store_products_of(plan, store_dir))
        if stale:
            summary.superseded += _supersede(stale)
            plan = build_plan(config, inputs, run_dir=str(run_dir), use_cache=options.use_cache)
    for _ in range(5):  # a superseded product may reveal an older one that is stale too
        stale = sorted(p for p in _store_products_used(plan, store_dir)
                       if _stale_reason(p, references, jwst_version))
        if not stale:
            break
        summary.superseded += _supersede(stale)
        plan = build_plan(config, inputs, run_dir=str(run_dir), use_cache=options.use_cache)
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
    from refsmith.plan import output_root, run_dir_for, write_run_dir

    options = options or RunOptions()
    stream = stream if stream is not None else sys.stderr
    started = time.perf_counter()
    if options.max_jobs is not None and options.max_jobs < 1:
        raise ConfigError("--max-jobs must be >= 1")
    if options.workers is not None and options.workers < 1:
        raise ConfigError("--workers must be >= 1")
    parse_memory(options.max_memory)  # a bad --max-memory is an error even with nothing to run
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
    with lock.held(), _sigterm_as_interrupt():
        plan = _plan(config, inputs, run_dir, options, store_dir, summary)
        calibration_jobs = list(plan.calibration.calibration_jobs)
        if offline:
            calibration_jobs = check_offline_references(calibration_jobs)
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
            nodes = _nodes(calibration_jobs, reffile_jobs, combine_jobs, previous, logs,
                           options.force_redo, dict(config.pipeline.references))
            store.sync_plan((n.id, n.kind, n.depends_on, n.log_path) for n in nodes)
            _keep_earlier_products(store, previous, {n.id for n in nodes})
            made_here = {p for r in previous.values() if r.state in FINISHED for p in r.outputs}
            for product in sorted(_store_products_used(plan, store_dir)):
                if str(product) not in made_here and product.is_file():
                    store.add_cached(f"cached:{product.name}", [str(product)])
            store.set_meta("run", {"started": time.time(), "jwst": _jwst_version(),
                                   "offline": offline, "config": plan.config_source})
            on_success = _make_on_success(dict(config.pipeline.references), _jwst_version())
            todo = [n for n in nodes if n.state not in FINISHED]
            outcome = DagOutcome(states={n.id: n.state for n in nodes})
            with _Reporter(len(nodes), options.progress, options.progress_interval,
                           stream) as reporter:
                if todo:
                    executor = _executor(config, options, settings)
                    executor.start()
                    try:
                        outcome = execute_dag(
                            nodes, store, executor, settings.to_dict(), retries=retries,
                            max_jobs=options.max_jobs,
                            progress=reporter if options.progress != "none" else None,
                            on_success=on_success)
                    finally:
                        executor.shutdown()
                else:
                    for node in nodes:
                        store.set_state(node.id, node.state)
            summary.executed = outcome.executed
            summary.retried = outcome.retried
            summary.lost_workers = outcome.lost_workers
            summary.stopped_early = outcome.stopped_early
            summary.counts = store.counts()
            for record in store.jobs(in_plan_only=True):
                if record.state == "failed":
                    summary.failures.append({"id": record.id, "error": record.error,
                                             "log": record.log_path})
                elif record.state == "blocked":
                    summary.blocked.append({"id": record.id, "reason": record.error})
            summary.seconds = time.perf_counter() - started
            store.set_meta("last_run", summary.to_dict() | {"ended": time.time()})
    if options.report:
        from refsmith.report import build_report

        try:
            summary.report = str(build_report(run_dir))
        except RefsmithError as error:  # the run's results stand; say why there is no report
            summary.report_error = str(error)
    summary.seconds = time.perf_counter() - started
    return summary


def _nodes(calibration_jobs: Sequence[CalibrationJob], reffile_jobs: Sequence[Any],
           combine_jobs: Sequence[Any], previous: Mapping[str, Any], logs: Path,
           force_redo: ForceRedo, references: Mapping[str, str]) -> list[Node]:
    """DAG nodes with their state before this run, decided from the files on disk."""
    jwst_version = _jwst_version()
    nodes: list[Node] = []
    pending: set[str] = set()
    for job in calibration_jobs:
        state = "pending"
        if force_redo not in ("calibration", "all") and outputs_valid(job) and not any(
            _stale_reason(Path(o.path), references, jwst_version) for o in job.outputs
        ):
            before = previous.get(job.id)
            state = "done" if before is not None and before.state == "done" else "cached"
        if state == "pending":
            pending.add(job.id)
        nodes.append(Node(job.id, "calibration", job.to_dict(), tuple(job.depends_on),
                          str(logs / f"{job.id}.log"), state))
    redo = force_redo in ("reffiles", "all")
    for kind, jobs in (("reffile", reffile_jobs), ("combine", combine_jobs)):
        for job in jobs:
            inputs = [i.path for i in job.inputs] if kind == "reffile" else list(job.inputs)
            before = previous.get(job.id)
            done = (not redo and before is not None and before.state in FINISHED
                    and _newer_than_inputs(job.output, inputs)
                    and not any(d in pending for d in job.depends_on))
            state = before.state if done and before is not None else "pending"
            if state == "pending":
                pending.add(job.id)
            nodes.append(Node(job.id, kind, job.to_dict(), tuple(job.depends_on),
                              str(logs / f"{job.id}.log"), state))
    return nodes


def _newer_than_inputs(output: str, inputs: Sequence[str]) -> bool:
    try:
        made = os.stat(output).st_mtime_ns
        return all(os.stat(p).st_mtime_ns <= made for p in inputs)
    except OSError:
        return False


def _keep_earlier_products(store: JobStore, previous: Mapping[str, Any],
                           planned: set[str]) -> None:
    """Jobs of an earlier plan whose products are on disk stay visible as done.

    After a resume the plan starts from what earlier runs made, so their jobs are no
    longer in it; they remain in the store (``in_plan`` 1 when all outputs are there).
    """
    store.mark_in_plan(
        job_id for job_id, record in previous.items()
        if job_id not in planned and record.state in FINISHED and record.outputs
        and all(Path(p).is_file() for p in record.outputs)
    )


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
            with contextlib.suppress(OSError):
                _write_json(provenance_path(product),
                            _provenance(job, product, output.steps, references, jwst_version))
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
        ``run_dir``, ``counts`` (per state), ``jobs`` (records with durations),
        ``failures`` (with ``log_tail``), ``last_run`` (summary of the last run).
    """
    directory = Path(run_dir).expanduser().resolve()
    with JobStore(directory / "store.sqlite", readonly=True) as store:
        records = store.jobs()
        counts = store.counts()
        last_run = store.meta("last_run")
        attempts = store.attempts()
    executions = Counter(a["job"] for a in attempts)
    jobs = [r.to_dict() | {"executions": executions.get(r.id, 0)}
            for r in records if r.in_plan]
    failures = []
    for record in records:
        if record.in_plan and record.state == "failed":
            failures.append({"id": record.id, "error": record.error, "log": record.log_path,
                             "log_tail": _tail(record.log_path, tail)})
    return {"run_dir": str(directory), "counts": counts, "jobs": jobs, "failures": failures,
            "last_run": last_run}


def _tail(path: str, lines: int) -> list[str]:
    if not path:
        return []
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]

"""The Dask executor: the same DAG on a Dask distributed cluster.

Three ways to get workers, in this order:

* ``scheduler`` (``--scheduler tcp://host:8786`` or ``execution.scheduler``): connect to an
  existing cluster. refsmith (and jwst) must be installed where the scheduler and the
  workers run (the scheduler unpickles the task), and the run directory and the
  calibrated store must be on a file system the workers share. Start workers with
  ``--nthreads 1``: a worker process runs one job at a time anyway (the job log uses the
  process's loggers), extra threads would only wait.
* ``cluster`` (``execution.cluster`` with ``kind: htcondor|slurm|pbs`` and the
  dask-jobqueue options, e.g. ``cores``, ``memory``, ``queue``): a dask-jobqueue cluster
  built on demand by :mod:`refsmith.execute.jobqueue`, ``workers`` jobs (adaptive
  when not given). A fixed cluster is kept at its size: every 5 s (:meth:`_check_workers`)
  it is re-scaled, which submits again the batch jobs whose workers were lost (scancel,
  walltime), with a warning naming both jobs. Importing dask-jobqueue writes
  ``~/.config/dask/jobqueue.yaml``.

Whatever the cluster, no worker at all for ``no_worker_timeout`` seconds (from the start
too) raises :class:`~refsmith.execute.base.NoWorkersError`: the run stops (exit 1), its
jobs pending, instead of waiting for ever.

Queued is not running (``reports_starts``): a task waits in the scheduler until a worker
takes it; its start event (below) is what :meth:`DaskExecutor.started` reports to the DAG
loop, which only then opens the job's attempt and counts it as running.
* neither: a ``LocalCluster`` on 127.0.0.1 with one thread per worker process.

Worker set-up happens lazily in the first task a worker process runs
(:func:`refsmith.execute.worker.prepare_worker`: off-line CRDS or a bounded timeout,
``import jwst``, ``gc.freeze()``), so nothing needs installing on the workers beyond the
packages. Each future is released as soon as its result arrives, so a worker lost later
does not make the scheduler recompute finished tasks. A worker that dies while running a
task is handled by Dask (the task moves to another worker; after the scheduler's
``allowed-failures`` it ends as ``KilledWorker``, reported as the job's failure).

Memory: every worker of a cluster built here declares a resource ``MEMORY`` = its memory
limit in bytes (LocalCluster: ``max_memory``, default the memory available, shared by the
workers; dask-jobqueue: the cluster's ``memory`` over its ``processes``), and each task
asks for ``MEMORY`` = its estimate, capped at the largest worker's (a task asking for
more than any worker has would never run; it is capped, with a warning). With an external
scheduler, resources are used only if its workers declare ``MEMORY``
(``dask worker ... --resources MEMORY=8e9``).

Timeouts: each task tells the client when it starts on a worker (a Dask event on the topic
:data:`STARTED_TOPIC`, with the worker's address); time queued in the scheduler does not
count. A job still running ``task['timeout']`` seconds after its start is failed with
``timed_out`` (not retried): its future is cancelled, and its worker is restarted through
its nanny (``Client.restart_workers``), the only way to stop a task thread stuck in a
plug-in. The limits: a worker without a nanny (``dask worker --no-nanny``) cannot be
restarted from the client: its thread keeps running the stuck job, and the worker stays
busy until the job returns (a warning says so); any other task running on the restarted
worker is rescheduled by Dask; a task whose start event is lost (an older refsmith on the
workers) is never timed out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from typing import Any

from refsmith.errors import ConfigError
from refsmith.execute.base import Completion, Notice, NoWorkersError, print_notice
from refsmith.execute.jobqueue import (
    JOBQUEUE_CLASSES,
    build_jobqueue_cluster,
    jobqueue_worker_memory,
)
from refsmith.execute.worker import run_task
from refsmith.util.memory import available_memory, format_memory

__all__ = ["JOBQUEUE_CLASSES", "DaskExecutor", "NoWorkersError", "build_jobqueue_cluster",
           "declared_memory", "jobqueue_worker_memory"]

WORKER_CHECK_INTERVAL = 5.0
"""Seconds between two looks at the workers (lost batch jobs, no worker at all)."""

STARTED_TOPIC = "refsmith-task-started"
"""The Dask event topic a task logs its start on (``{"key", "worker", "pid"}``)."""


def run_dask_task(task: dict[str, Any]) -> dict[str, Any]:
    """What a Dask worker runs: say that the task starts (for its timeout), then
    :func:`~refsmith.execute.worker.run_task`."""
    # a job log that cannot be written (disk full) must not print tracebacks on the worker
    logging.raiseExceptions = False
    with contextlib.suppress(Exception):  # no worker (tests calling it directly): no event
        from distributed import get_worker

        worker = get_worker()
        worker.log_event(STARTED_TOPIC, {"key": str(task.get("key", "")),
                                         "worker": worker.address, "pid": os.getpid()})
    return run_task(task)


class DaskExecutor:
    """Run tasks on a Dask distributed cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of an existing scheduler.
    cluster : dict, optional
        dask-jobqueue cluster options (see :func:`build_jobqueue_cluster`).
    workers : int, optional
        Workers of a cluster built here (LocalCluster or jobqueue).
    max_memory : int, optional
        Memory of a LocalCluster's workers together (default: the memory available),
        shared equally: each worker's memory limit (the nanny restarts a worker beyond
        it) and its ``MEMORY`` resource.
    connect_timeout : float
        Seconds to wait for the scheduler.
    notice : callable, optional
        Where warnings go (default: stderr).
    no_worker_timeout : float
        Seconds without a single worker (from the start too) after which :meth:`wait`
        raises :class:`NoWorkersError`; 0 = wait for ever.
    """

    name = "dask"
    reports_starts = True  # a task is running from its start event, not its submission

    def __init__(self, scheduler: str | None = None, cluster: dict[str, Any] | None = None,
                 workers: int | None = None, max_memory: int | None = None,
                 connect_timeout: float = 30.0, notice: Notice = print_notice,
                 no_worker_timeout: float = 0.0) -> None:
        self.scheduler = scheduler
        self.cluster_options = cluster
        self.workers = workers
        self.max_memory = max_memory
        self.connect_timeout = connect_timeout
        self.notice = notice
        self.client: Any = None
        self.cluster: Any = None
        self.worker_memory: int | None = None  # the largest MEMORY a worker declares
        self._futures: dict[Any, str] = {}  # future -> job id
        self._timeouts: dict[Any, float] = {}  # future -> its job's timeout (seconds)
        self._started: dict[str, tuple[float, str]] = {}  # key -> (monotonic, worker address)
        self._started_lock = threading.Lock()  # filled by the client's event-loop thread
        self._new_starts: list[tuple[str, float, str]] = []  # (key, time.time(), worker)
        self._keys: dict[str, str] = {}  # key -> job id, of the futures in flight
        self.timed_out = 0
        self.no_worker_timeout = no_worker_timeout
        self._next_check = 0.0
        self._no_worker_since: float | None = None
        self._jobs: dict[str, str] = {}  # batch job name -> its job id (jobqueue)
        self.replaced_jobs: list[tuple[str, str, str]] = []  # (name, lost id, new id)

    def start(self) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ConfigError("the dask executor needs dask[distributed]: pip install "
                              "'refsmith[dask]'") from exc
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=self.connect_timeout)
            except OSError as exc:
                raise ConfigError(f"cannot reach the Dask scheduler {self.scheduler}: "
                                  f"{exc}") from exc
            self.client.subscribe_topic(STARTED_TOPIC, self._on_started)
            self._no_worker_since = time.monotonic()
            self.worker_memory = declared_memory(self.client.scheduler_info())
            if self.worker_memory is None:
                self.notice(f"the workers of {self.scheduler} declare no MEMORY resource: "
                            "jobs are submitted without their memory estimates (start "
                            "workers with --resources MEMORY=<bytes>)")
            return
        if self.cluster_options:
            self.cluster = build_jobqueue_cluster(self.cluster_options, self.workers)
            self.worker_memory = jobqueue_worker_memory(self.cluster_options)
            if self.worker_memory is None:
                self.notice("execution.cluster has no memory: its workers declare no MEMORY "
                            "resource and jobs are submitted without their memory estimates")
        else:
            from refsmith.execute.local import default_workers

            workers = self.workers or default_workers()
            total = self.max_memory or available_memory()
            extra: dict[str, Any] = {}
            if total:
                self.worker_memory = total // workers
                extra = {"memory_limit": self.worker_memory,
                         "resources": {"MEMORY": self.worker_memory}}
            self.cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, **extra)
        self.client = Client(self.cluster, timeout=self.connect_timeout)
        self.client.subscribe_topic(STARTED_TOPIC, self._on_started)
        self._no_worker_since = time.monotonic()

    def _on_started(self, event: Any) -> None:
        """A task's start event (called in the client's event-loop thread)."""
        with contextlib.suppress(Exception):
            _, message = event
            key, worker = str(message["key"]), str(message.get("worker", ""))
            with self._started_lock:
                self._started[key] = (time.monotonic(), worker)
                self._new_starts.append((key, time.time(), worker))

    def started(self) -> list[tuple[str, float, str]]:
        """``(job id, start time (time.time()), worker)`` of the tasks that began on a
        worker since the last call (a task waiting in the scheduler's queue has not)."""
        with self._started_lock:
            new, self._new_starts = self._new_starts, []
        return [(self._keys[key], when, f"dask:{worker}") for key, when, worker in new
                if key in self._keys]

    def capacity(self) -> int:
        return 1_000_000  # the scheduler queues; submit everything that is ready

    def fits(self, memory: int) -> bool:
        return True  # the scheduler matches tasks to workers (the MEMORY resource)

    def submit(self, task: dict[str, Any]) -> str:
        key = f"refsmith-{task['id']}-{task.get('attempt', 1)}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(run_dask_task, {**task, "key": key}, key=key, pure=False,
                                    retries=0, resources=self._resources(task))
        self._futures[future] = str(task["id"])
        self._keys[key] = str(task["id"])
        if float(task.get("timeout") or 0) > 0:
            self._timeouts[future] = float(task["timeout"])
        return ""

    def _resources(self, task: dict[str, Any]) -> dict[str, int] | None:
        """``{"MEMORY": estimate}``, capped at the largest worker's (with a warning, once
        per job); None when the workers declare no MEMORY or the task has no estimate."""
        memory = int(task.get("memory") or 0)
        if self.worker_memory is None or memory <= 0:
            return None
        if memory > self.worker_memory:
            if task.get("attempt", 1) == 1:
                self.notice(f"job {task['id']} is estimated at {format_memory(memory)}, more "
                            f"than any Dask worker has ({format_memory(self.worker_memory)}): "
                            "it asks for that much instead")
            memory = self.worker_memory
        return {"MEMORY": memory}

    def wait(self, timeout: float) -> list[Completion]:
        from distributed import wait

        if not self._futures:
            return []
        self._check_workers()
        expired = self._expired()
        if expired:
            return expired
        deadlines = self._deadlines()
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines.values()) - time.monotonic()))
        try:
            done, _ = wait(list(self._futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return self._expired()
        completions = []
        for future in done:
            job_id = self._futures.pop(future)
            self._forget(future)
            try:
                result = future.result()
                completions.append(Completion(job_id, result,
                                              worker=f"dask:{result.get('pid', '')}"))
            except BaseException as exc:  # KilledWorker, CancelledError, ...
                if isinstance(exc, KeyboardInterrupt):
                    raise
                completions.append(Completion(
                    job_id, {"ok": False, "outputs": [],
                             "error": f"the Dask task was lost: {type(exc).__name__}: {exc}"},
                    lost=True))
            finally:
                future.release()  # at once: a later worker loss must not recompute it
        return completions

    def _deadlines(self) -> dict[Any, float]:
        """future -> when its job passes its timeout (monotonic), for those started."""
        with self._started_lock:
            started = dict(self._started)
        return {future: started[future.key][0] + limit
                for future, limit in self._timeouts.items() if future.key in started}

    def _forget(self, future: Any) -> None:
        self._timeouts.pop(future, None)
        self._keys.pop(future.key, None)
        with self._started_lock:
            self._started.pop(future.key, None)

    def _expired(self) -> list[Completion]:
        """Jobs past their timeout: cancelled, their workers restarted, the jobs failed."""
        now = time.monotonic()
        completions = []
        for future, deadline in self._deadlines().items():
            if now < deadline or future.done():
                continue  # a finished one is reported by wait() as usual
            job_id = self._futures.pop(future)
            limit = self._timeouts[future]
            with self._started_lock:
                started, address = self._started.get(future.key, (now, ""))
            self._forget(future)
            with contextlib.suppress(Exception):
                self.client.cancel([future])
            restarted = self._restart(address)
            self.timed_out += 1
            error = (f"timed out after {limit:g} s: the Dask task was cancelled and "
                     + (f"its worker {address} restarted" if restarted else
                        f"its worker {address or '(unknown)'} could not be restarted (no "
                        "nanny?): it stays busy until the job returns")
                     + " (execution.timeout, recipes.<name>.timeout: raise it if the job "
                       "needs longer)")
            if not restarted:
                self.notice(f"job {job_id}: {error}")
            completions.append(Completion(
                job_id, {"ok": False, "outputs": [], "error": error, "permanent": True,
                         "timed_out": True, "seconds": now - started},
                worker=f"dask:{address}"))
        return completions

    def _check_workers(self) -> None:
        """Every :data:`WORKER_CHECK_INTERVAL` s: keep a fixed jobqueue cluster at its size
        (batch jobs whose workers were lost are submitted again), and raise
        :class:`NoWorkersError` after ``no_worker_timeout`` s without any worker."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + WORKER_CHECK_INTERVAL
        if self.cluster_options and self.workers and self.cluster is not None:
            self._keep_size()
        try:
            count = len(self.client.scheduler_info()["workers"])
        except Exception:  # the scheduler is unreachable: counts as no worker
            count = 0
        if count:
            self._no_worker_since = None
            return
        if self._no_worker_since is None:
            self._no_worker_since = now
        waited = now - self._no_worker_since
        if self.no_worker_timeout and waited >= self.no_worker_timeout:
            where = (f"the scheduler {self.scheduler}" if self.scheduler else
                     f"the {type(self.cluster).__name__}" if self.cluster is not None
                     else "the cluster")
            why = ("the batch jobs did not start or were all lost; check the queue (e.g. "
                   "squeue, condor_q) and the jobs' logs" if self.cluster_options else
                   "no worker connected or all were lost; check the workers")
            raise NoWorkersError(
                f"no Dask worker for {waited:.0f} s on {where} (execution.no_worker_timeout "
                f"= {self.no_worker_timeout:g} s): {why}, then run again to resume")

    def _keep_size(self) -> None:
        """Submit again the batch jobs whose workers are lost (scancel, walltime, node
        failure): dask's SpecCluster forgets a lost job after
        ``distributed.deploy.lost-worker-timeout`` (15 s) and ``scale()`` puts it back."""
        with contextlib.suppress(Exception):
            self.cluster.scale(jobs=self.workers)
        jobs = {name: str(getattr(job, "job_id", "") or "")
                for name, job in list(self.cluster.workers.items())}
        for name, job_id in jobs.items():
            before = self._jobs.get(name)
            if before and job_id and before != job_id:
                self.replaced_jobs.append((name, before, job_id))
                self.notice(f"batch job {before} ({name}) was lost: replaced by batch job "
                            f"{job_id}")
        self._jobs.update({name: job_id for name, job_id in jobs.items() if job_id})

    def _restart(self, address: str) -> bool:
        """Restart a worker through its nanny; whether it was."""
        if not address:
            return False
        try:
            status = self.client.restart_workers([address], timeout=60,
                                                 raise_for_error=False)
        except Exception:
            return False
        return status.get(address) == "OK"

    def shutdown(self, *, cancel: bool = False) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                if self._futures:
                    self.client.cancel(list(self._futures))
            self._futures.clear()
            self._timeouts.clear()
            self._keys.clear()
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()
            self.cluster = None


def declared_memory(info: dict[str, Any]) -> int | None:
    """The largest ``MEMORY`` resource the workers of ``client.scheduler_info()`` declare
    (None when none does)."""
    amounts = [worker.get("resources", {}).get("MEMORY")
               for worker in info.get("workers", {}).values()]
    declared = [int(a) for a in amounts if a]
    return max(declared) if declared else None

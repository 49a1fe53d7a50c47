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
  built on demand, ``workers`` jobs (adaptive 1..32 when not given). Importing
  dask-jobqueue writes ``~/.config/dask/jobqueue.yaml``.
* neither: a ``LocalCluster`` on 127.0.0.1 with one thread per worker process.

Worker set-up happens lazily in the first task a worker process runs
(:func:`refsmith.execute.worker.prepare_worker`: off-line CRDS or a bounded timeout,
``import jwst``, ``gc.freeze()``), so nothing needs installing on the workers beyond the
packages. Each future is released as soon as its result arrives, so a worker lost later
does not make the scheduler recompute finished tasks. A worker that dies while running a
task is handled by Dask (the task moves to another worker; after the scheduler's
``allowed-failures`` it ends as ``KilledWorker``, reported as the job's failure).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from refsmith.errors import ConfigError
from refsmith.execute.base import Completion
from refsmith.execute.worker import run_task

__all__ = ["JOBQUEUE_CLASSES", "DaskExecutor", "build_jobqueue_cluster"]

JOBQUEUE_CLASSES = {"htcondor": "HTCondorCluster", "slurm": "SLURMCluster",
                    "pbs": "PBSCluster"}


def build_jobqueue_cluster(cluster: dict[str, Any], workers: int | None = None) -> Any:
    """A dask-jobqueue cluster from ``execution.cluster`` (``kind`` plus its options).

    Parameters
    ----------
    cluster : dict
        ``kind`` (htcondor, slurm, pbs) and keyword arguments of the dask-jobqueue class
        (``cores``, ``memory``, ``disk``, ``queue``, ``walltime``, ``job_extra_directives``...).
    workers : int, optional
        Number of batch jobs to start; adaptive (1 to 32) when not given.

    Returns
    -------
    dask_jobqueue.JobQueueCluster
    """
    options = dict(cluster)
    kind = str(options.pop("kind", "")).lower()
    if kind not in JOBQUEUE_CLASSES:
        raise ConfigError(f"execution.cluster.kind must be htcondor, slurm or pbs, got {kind!r}")
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ConfigError("execution.cluster needs dask-jobqueue: pip install "
                          "'refsmith[dask]'") from exc
    options.setdefault("processes", 1)  # one worker process per job, one thread
    options.setdefault("cores", 1)
    cls = getattr(dask_jobqueue, JOBQUEUE_CLASSES[kind])
    try:
        built = cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"execution.cluster ({kind}): {exc}") from exc
    if workers:
        built.scale(jobs=workers)
    else:
        built.adapt(minimum_jobs=1, maximum_jobs=32)
    return built


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
        Memory limit per worker of a cluster built here (the nanny restarts a worker
        beyond it).
    connect_timeout : float
        Seconds to wait for the scheduler.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, cluster: dict[str, Any] | None = None,
                 workers: int | None = None, max_memory: int | None = None,
                 connect_timeout: float = 30.0) -> None:
        self.scheduler = scheduler
        self.cluster_options = cluster
        self.workers = workers
        self.max_memory = max_memory
        self.connect_timeout = connect_timeout
        self.client: Any = None
        self.cluster: Any = None
        self._futures: dict[Any, str] = {}  # future -> job id

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
            return
        if self.cluster_options:
            self.cluster = build_jobqueue_cluster(self.cluster_options, self.workers)
        else:
            from refsmith.execute.local import default_workers

            extra = {"memory_limit": self.max_memory} if self.max_memory else {}
            self.cluster = LocalCluster(
                n_workers=self.workers or default_workers(), threads_per_worker=1,
                processes=True, host="127.0.0.1", dashboard_address=None, **extra)
        self.client = Client(self.cluster, timeout=self.connect_timeout)

    def capacity(self) -> int:
        return 1_000_000  # the scheduler queues; submit everything that is ready

    def submit(self, task: dict[str, Any]) -> str:
        key = f"refsmith-{task['id']}-{task.get('attempt', 1)}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(run_task, task, key=key, pure=False, retries=0)
        self._futures[future] = str(task["id"])
        return ""

    def wait(self, timeout: float) -> list[Completion]:
        from distributed import wait

        if not self._futures:
            return []
        try:
            done, _ = wait(list(self._futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        completions = []
        for future in done:
            job_id = self._futures.pop(future)
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

    def shutdown(self, *, cancel: bool = False) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                if self._futures:
                    self.client.cancel(list(self._futures))
            self._futures.clear()
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()
            self.cluster = None

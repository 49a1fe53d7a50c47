"""dask-jobqueue clusters (HTCondor, Slurm, PBS) built from ``execution.cluster``.

* :func:`build_jobqueue_cluster`: the cluster, ``workers`` batch jobs or adaptive with
  bounded churn (:data:`ADAPT_DEFAULTS`, overridable with ``cluster.adapt``).
* :func:`import_jobqueue`: ``import dask_jobqueue`` without its SIGINT handler. Its module
  ``runner`` runs ``signal.signal(SIGINT, lambda *_: sys.exit())`` on import, which turned
  Ctrl-C into a silent exit 0; the handler in place before the import is put back, so
  Ctrl-C is a ``KeyboardInterrupt`` as everywhere else (exit 130, "interrupted").
* :func:`jobqueue_worker_memory`: the ``MEMORY`` resource each worker declares.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from refsmith.errors import ConfigError

__all__ = ["ADAPT_DEFAULTS", "JOBQUEUE_CLASSES", "build_jobqueue_cluster", "import_jobqueue",
           "jobqueue_worker_memory"]

JOBQUEUE_CLASSES = {"htcondor": "HTCondorCluster", "slurm": "SLURMCluster",
                    "pbs": "PBSCluster"}

ADAPT_DEFAULTS: dict[str, Any] = {
    "minimum_jobs": 1,
    "maximum_jobs": 32,
    # dask's defaults (1 s, 3, 5 s) submitted 28 batch jobs in ~20 s for 56 short jobs on a
    # 2-CPU Slurm node: decide every 10 s, retire a job only after 6 decisions in a row
    # (a minute idle), and ask for the jobs that finish the queued work in 5 minutes, not 5 s
    "interval": "10s",
    "wait_count": 6,
    "target_duration": "300s",
}
"""Keyword arguments of ``cluster.adapt()`` when ``workers`` is not given; a mapping
``execution.cluster.adapt`` overrides any of them."""


def import_jobqueue() -> Any:
    """``import dask_jobqueue``, keeping the SIGINT handler of this process (see the
    module's docstring); ConfigError when it is not installed."""
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT) if main else None
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ConfigError("execution.cluster needs dask-jobqueue: pip install "
                          "'refsmith[dask]'") from exc
    finally:
        if main and signal.getsignal(signal.SIGINT) is not before:
            signal.signal(signal.SIGINT, before)
    if main and _installed_by_jobqueue(signal.getsignal(signal.SIGINT)):
        # imported earlier by someone else, with its handler still in place
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return dask_jobqueue


def _installed_by_jobqueue(handler: Any) -> bool:
    return str(getattr(handler, "__module__", "") or "").startswith("dask_jobqueue")


def jobqueue_worker_memory(cluster: dict[str, Any]) -> int | None:
    """The memory (bytes) of each worker of a dask-jobqueue cluster: its ``memory`` (per
    batch job) over its ``processes`` (default 1); None when ``memory`` is not given."""
    if cluster.get("memory") is None:
        return None
    from dask.utils import parse_bytes

    try:
        return int(parse_bytes(cluster["memory"]) // int(cluster.get("processes") or 1))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"execution.cluster.memory: {exc}") from exc


def adapt_options(cluster: dict[str, Any]) -> dict[str, Any]:
    """:data:`ADAPT_DEFAULTS` with ``cluster['adapt']`` over them."""
    extra = cluster.get("adapt") or {}
    if not isinstance(extra, dict):
        raise ConfigError("execution.cluster.adapt must be a mapping of Adaptive options "
                          f"(e.g. maximum_jobs: 8, interval: 10s), got {extra!r}")
    return {**ADAPT_DEFAULTS, **extra}


def build_jobqueue_cluster(cluster: dict[str, Any], workers: int | None = None) -> Any:
    """A dask-jobqueue cluster from ``execution.cluster`` (``kind`` plus its options).

    Each worker declares the resource ``MEMORY`` (:func:`jobqueue_worker_memory`) when the
    cluster's ``memory`` is given (added to ``worker_extra_args``).

    Parameters
    ----------
    cluster : dict
        ``kind`` (htcondor, slurm, pbs), optionally ``adapt`` (options of ``adapt()``), and
        keyword arguments of the dask-jobqueue class (``cores``, ``memory``, ``queue``,
        ``walltime``, ``python``, ``interface``, ``job_extra_directives``...).
    workers : int, optional
        Number of batch jobs to start; adaptive (:func:`adapt_options`) when not given.

    Returns
    -------
    dask_jobqueue.JobQueueCluster
    """
    options = dict(cluster)
    kind = str(options.pop("kind", "")).lower()
    if kind not in JOBQUEUE_CLASSES:
        raise ConfigError(f"execution.cluster.kind must be htcondor, slurm or pbs, got {kind!r}")
    adapt = adapt_options(options)
    options.pop("adapt", None)
    dask_jobqueue = import_jobqueue()
    options.setdefault("processes", 1)  # one worker process per job, one thread
    options.setdefault("cores", 1)
    memory = jobqueue_worker_memory(options)
    if memory is not None:
        options["worker_extra_args"] = [*(options.get("worker_extra_args") or ()),
                                        "--resources", f"MEMORY={memory}"]
    cls = getattr(dask_jobqueue, JOBQUEUE_CLASSES[kind])
    try:
        built = cls(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"execution.cluster ({kind}): {exc}") from exc
    if workers:
        built.scale(jobs=workers)
    else:
        try:
            built.adapt(**adapt)
        except (TypeError, ValueError, KeyError) as exc:
            built.close()
            raise ConfigError(f"execution.cluster.adapt: {exc}") from exc
    return built

"""Executing a plan's job DAG, resumably: the common loop, the local process pool, Dask, the
run's job store.

``dag.execute_dag`` drives any executor with the ``base.Executor`` interface;
``local.LocalExecutor`` runs long-lived worker processes on this machine and
``dask.DaskExecutor`` runs the same tasks on a Dask distributed cluster. What runs in a
worker is ``worker.run_task``; ``progress`` shows it. ``store.JobStore`` records every
job's state in ``<run>/store.sqlite`` (``store.RunLock`` keeps a run directory to one
process) and ``resume`` decides from the files on disk which jobs are already done.
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {
    "Completion": "base", "Executor": "base",
    "DagOutcome": "dag", "Node": "dag", "execute_dag": "dag",
    "job_nodes": "resume",
    "FINISHED": "store", "JobStore": "store", "RunLock": "store",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)

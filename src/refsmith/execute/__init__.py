"""Executing a plan's job DAG: the common loop, the local process pool, Dask.

``dag.execute_dag`` drives any executor with the ``base.Executor`` interface;
``local.LocalExecutor`` runs long-lived worker processes on this machine and
``dask.DaskExecutor`` runs the same tasks on a Dask distributed cluster. What runs in a
worker is ``worker.run_task``.
"""

from refsmith.execute.base import Completion, Executor
from refsmith.execute.dag import DagOutcome, Node, execute_dag

__all__ = ["Completion", "DagOutcome", "Executor", "Node", "execute_dag"]

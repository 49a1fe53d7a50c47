"""What the DAG loop needs from an executor (local process pool, Dask)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from refsmith.errors import RefsmithError

__all__ = ["Completion", "Executor", "NoWorkersError", "Notice", "print_notice"]

Notice = Callable[[str], None]
"""Where an executor says something the user should know (a warning), once."""


def print_notice(text: str) -> None:
    """The default :data:`Notice`: a ``warning:`` line on stderr."""
    print(f"warning: {text}", file=sys.stderr, flush=True)


class NoWorkersError(RefsmithError):
    """No worker for ``execution.no_worker_timeout`` (Dask): the run stops (exit code 1),
    its unfinished jobs left pending for the next run."""

    exit_code = 1


@dataclass(frozen=True)
class Completion:
    """The end of one task: its result, or the loss of its worker.

    Attributes
    ----------
    task_id : str
        The job id.
    result : dict
        What :func:`refsmith.execute.worker.run_task` returned (``ok``, ``outputs``,
        ``error``...); for a lost task ``ok`` is False and ``error`` says why.
    worker : str
        The worker that ran (or lost) it.
    lost : bool
        The worker died (e.g. killed) while running the task.
    recycle : bool
        The worker passed its memory limit and is being replaced (informational).
    """

    task_id: str
    result: dict[str, Any] = field(default_factory=dict)
    worker: str = ""
    lost: bool = False
    recycle: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.result.get("ok")) and not self.lost


class Executor(Protocol):
    """A place to run tasks. Single-threaded use from the DAG loop."""

    name: str

    def start(self) -> None:
        """Start workers or connect to the cluster."""

    def capacity(self) -> int:
        """How many more tasks may be submitted now (idle workers)."""

    def fits(self, memory: int) -> bool:
        """Whether a task with this memory estimate (bytes) may start now, next to the
        tasks running (the DAG loop starts the oldest ready task anyway when none runs)."""

    def submit(self, task: dict[str, Any]) -> str:
        """Send one task (see ``run_task``; ``task['memory']`` is its estimate in bytes);
        return the worker name if known, else ''."""

    def started(self) -> list[tuple[str, float, str]]:
        """Only where ``reports_starts`` is True (a scheduler queues the tasks submitted):
        ``(task id, time.time() of its start, worker)`` of the tasks that began on a worker
        since the last call. Elsewhere a task runs from its submission."""

    def wait(self, timeout: float) -> list[Completion]:
        """Block up to ``timeout`` seconds for finished or lost tasks."""

    def shutdown(self, *, cancel: bool = False) -> None:
        """Stop the workers (``cancel``: abandon running tasks now)."""

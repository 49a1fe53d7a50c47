"""The DAG loop shared by every executor.

Jobs are submitted as soon as the jobs they depend on are finished; a job that fails (it
raised, reported a failure, or its worker died) is retried up to ``retries`` times, then
marked ``failed``, and every job that depends on it, directly or not, is marked
``blocked`` with the reason. Every other job still runs. Every state change goes to the
:class:`~refsmith.execute.store.JobStore` before the loop goes on.

Time: a job may carry a timeout (``Node.timeout``); the executor stops it once it has run
that long on a worker (the local executor kills and replaces the worker process) and reports
it failed with ``timed_out``. A timed-out job is not retried (a job that ran that long would
most likely do so again; the next ``refsmith run`` tries it again), and its dependents are
blocked.

Disk full: a job that failed for lack of space (``disk_full`` in its result) is not retried
and stops the run: no other job starts, the running ones finish, the rest stay ``pending``
for the next run (``DagOutcome.stopped`` says why).

Queued is not running: an executor whose scheduler queues tasks (Dask:
``reports_starts``) tells when each one really begins on a worker
(:meth:`~refsmith.execute.base.Executor.started`). Until then the job is ``queued`` in the
loop (``pending`` in the store, no attempt opened), so progress counts as running, and the
store times, only what runs. A task that ends before its start is seen (a lost start event,
a worker lost while the task waited) opens its attempt when it ends, ``seconds`` (measured
on the worker) before.

Memory: a ready job starts only when the executor says its estimate fits next to the jobs
running (:meth:`~refsmith.execute.base.Executor.fits`). When the oldest ready job does not
fit, a later one that does may start instead, at most ``max_overtakes`` times; then no
other job starts until the oldest has, which it does at the latest once nothing runs.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from refsmith.execute.base import Completion, Executor
from refsmith.execute.store import FINISHED, JobStore, StoreWriteError

__all__ = ["DagOutcome", "Node", "execute_dag"]

KIND_ORDER = {"calibration": 0, "reffile": 1, "combine": 2}
MAX_OVERTAKES = 8
"""How many later jobs may start while the oldest ready job waits for memory."""


@dataclass(frozen=True)
class Node:
    """One job of the DAG.

    Attributes
    ----------
    id : str
        The job id (as in the plan).
    kind : str
        ``calibration``, ``reffile`` or ``combine``.
    job : dict
        The job's ``to_dict()``, sent to the worker.
    depends_on : tuple of str
        Ids of the jobs whose outputs it needs.
    log_path : str
        Its log file.
    state : str
        Its state before this run: ``pending`` (to run), ``done`` or ``cached`` (outputs
        verified present; not run).
    memory : int
        Its memory estimate in bytes (the job's ``memory``; 0 = none).
    timeout : float
        Seconds it may run on a worker before it is stopped and failed (0 = no limit).
    """

    id: str
    kind: str
    job: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()
    log_path: str = ""
    state: str = "pending"
    memory: int = 0
    timeout: float = 0.0


@dataclass
class DagOutcome:
    """What a run of the loop did."""

    states: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    executed: int = 0  # task executions (attempts) in this run
    retried: int = 0
    lost_workers: int = 0
    timed_out: int = 0  # attempts stopped at their timeout
    stopped_early: bool = False  # --max-jobs reached with jobs still pending
    stopped: str = ""  # why no more jobs were started (a job found the disk full)
    seconds: float = 0.0

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)


Progress = Callable[[Mapping[str, str]], None]
OnSuccess = Callable[[Node, Completion], str]


def execute_dag(
    nodes: Iterable[Node],
    store: JobStore,
    executor: Executor,
    settings: Mapping[str, Any],
    *,
    retries: int = 1,
    max_jobs: int | None = None,
    progress: Progress | None = None,
    on_success: OnSuccess | None = None,
    poll: float = 0.5,
    max_overtakes: int = MAX_OVERTAKES,
) -> DagOutcome:
    """Run the DAG to the end (or to ``max_jobs`` new jobs) with ``executor``.

    Parameters
    ----------
    nodes : iterable of Node
        Every job of the plan, with its state before this run.
    store : JobStore
        Where every state change is recorded (the jobs must already be in it).
    executor : Executor
        Started executor.
    settings : mapping
        :class:`~refsmith.execute.worker.WorkerSettings` as a dict, sent with each task.
    retries : int
        Extra attempts after a failure (in this run).
    max_jobs : int, optional
        Start at most this many jobs in this run; the rest stay ``pending``.
    progress : callable, optional
        Called with ``{job id: state}`` after every change.
    on_success : callable, optional
        ``on_success(node, completion) -> error``: checks a successful job in the main
        process (e.g. outputs present) and records provenance; a non-empty error fails
        the attempt.
    poll : float
        Longest wait for an event, in seconds.
    max_overtakes : int
        How many later jobs may start while the oldest ready job does not fit in memory.

    Returns
    -------
    DagOutcome
        Final states and counters. ``KeyboardInterrupt`` (and a
        :class:`~refsmith.execute.store.StoreWriteError`: the store could not be written)
        propagates after the executor is shut down and the running jobs are put back to
        ``pending`` (when the store can be written).
    """
    started = time.perf_counter()
    by_id = {node.id: node for node in nodes}
    outcome = DagOutcome(states={n.id: n.state for n in by_id.values()})
    states = outcome.states
    dependents: dict[str, list[str]] = {i: [] for i in by_id}
    waiting: dict[str, int] = {}
    tries: dict[str, int] = {}
    ready: deque[str] = deque()
    running: dict[str, str] = {}  # job id -> worker
    overtaken: dict[str, int] = {}  # job id -> jobs started while it waited for memory

    def report() -> None:
        if progress is not None:
            progress(states)

    def block(root: str, error: str) -> None:
        queue = deque((child, root) for child in dependents.get(root, ()))
        while queue:
            job_id, parent = queue.popleft()
            if states[job_id] != "pending":
                continue
            states[job_id] = "blocked"
            if parent == root:
                text = f"depends on {root}, which failed: {error}"
            else:
                text = f"depends on {parent}, which is blocked ({root} failed: {error})"
            outcome.errors[job_id] = text
            store.set_state(job_id, "blocked", error=text)
            queue.extend((child, job_id) for child in dependents.get(job_id, ()))

    for node in sorted(by_id.values(), key=_priority):
        unknown = [d for d in node.depends_on if d not in by_id]
        for dep in node.depends_on:
            if dep in dependents:
                dependents[dep].append(node.id)
        if node.state in FINISHED:
            store.set_state(node.id, node.state, error="")
            continue
        if unknown:
            states[node.id] = "blocked"
            outcome.errors[node.id] = f"depends on {unknown[0]}, which is not in the plan"
            store.set_state(node.id, "blocked", error=outcome.errors[node.id])
            continue
        store.set_state(node.id, "pending")
        waiting[node.id] = sum(1 for d in node.depends_on if states[d] not in FINISHED)
        if waiting[node.id] == 0:
            ready.append(node.id)
    report()

    started_jobs = 0
    reports_starts = bool(getattr(executor, "reports_starts", False))

    def begin(job_id: str, when: float | None = None, worker: str = "") -> None:
        """The job runs on a worker now (or since ``when``): open its attempt."""
        store.start_attempt(job_id, worker, started=when)
        states[job_id] = "running"

    def take_starts() -> None:
        if reports_starts:
            for job_id, when, worker in executor.started():
                if states.get(job_id) == "queued" and job_id in running:
                    begin(job_id, when, worker)

    try:
        while ready or running:
            while ready and executor.capacity() > 0 and not outcome.stopped:
                while ready and states[ready[0]] != "pending":
                    ready.popleft()  # only pending jobs start
                if not ready:
                    break
                index = _next_ready(ready, states, by_id, executor, bool(running),
                                    overtaken, max_overtakes)
                if index is None:
                    break  # wait for memory
                job_id = ready[index]
                first = tries.get(job_id, 0) == 0
                if first and max_jobs is not None and started_jobs >= max_jobs:
                    outcome.stopped_early = True
                    break
                del ready[index]
                node = by_id[job_id]
                tries[job_id] = tries.get(job_id, 0) + 1
                started_jobs += first
                if not reports_starts:
                    store.start_attempt(job_id)
                worker = executor.submit({"id": job_id, "kind": node.kind, "job": dict(node.job),
                                          "log_path": node.log_path, "settings": dict(settings),
                                          "attempt": tries[job_id], "memory": node.memory,
                                          "timeout": node.timeout})
                if worker and not reports_starts:
                    store.set_worker(job_id, worker)
                running[job_id] = worker
                states[job_id] = "queued" if reports_starts else "running"
                outcome.executed += 1
            take_starts()
            # once per turn, workers refilled: what runs now (also while jobs run long)
            report()
            if (outcome.stopped_early or outcome.stopped) and not running:
                break
            if not running:
                continue
            completions = executor.wait(poll)
            take_starts()
            for completion in completions:
                job_id = completion.task_id
                if job_id not in running:
                    continue  # a stale result (e.g. of a cancelled attempt)
                running.pop(job_id)
                node = by_id[job_id]
                result = completion.result
                if states[job_id] == "queued":  # its start was not seen: it ran until now
                    seconds = result.get("seconds")
                    begin(job_id, time.time() - float(seconds) if seconds else None)
                error = "" if completion.ok else str(result.get("error") or "the job failed")
                if completion.ok and on_success is not None:
                    error = on_success(node, completion)
                outputs = [str(p) for p in result.get("outputs", [])]
                worker = completion.worker or str(result.get("pid", ""))
                peak = result.get("peak_rss")
                outcome.lost_workers += completion.lost
                outcome.timed_out += bool(result.get("timed_out"))
                disk_full = bool(result.get("disk_full")) and not completion.ok
                if not error:
                    states[job_id] = "done"
                    outcome.errors.pop(job_id, None)
                    store.finish_attempt(job_id, "done", outputs=outputs,
                                         seconds=result.get("seconds"), worker=worker,
                                         log_path=result.get("log_path"), peak_rss=peak)
                    for child in dependents.get(job_id, ()):
                        if child in waiting and states[child] == "pending":
                            waiting[child] -= 1
                            if waiting[child] == 0:
                                ready.append(child)
                elif (tries[job_id] <= retries and not result.get("permanent")
                      and not disk_full):
                    outcome.retried += 1
                    states[job_id] = "pending"
                    store.finish_attempt(job_id, "pending", error=error, worker=worker,
                                         seconds=result.get("seconds"),
                                         log_path=result.get("log_path"), peak_rss=peak)
                    ready.appendleft(job_id)
                else:
                    states[job_id] = "failed"
                    outcome.errors[job_id] = error
                    store.finish_attempt(job_id, "failed", error=error, worker=worker,
                                         seconds=result.get("seconds"),
                                         log_path=result.get("log_path"), peak_rss=peak)
                    block(job_id, _first_line(error))
                    if disk_full and not outcome.stopped:
                        outcome.stopped = (f"{job_id} could not write for lack of space; the "
                                           "jobs not started are left pending: free some "
                                           "space and run again")
        report()
    except BaseException:
        executor.shutdown(cancel=True)
        for job_id in running:
            states[job_id] = "pending"
        with contextlib.suppress(StoreWriteError):  # the next run's recover() does it
            store.recover()
        report()
        raise
    outcome.seconds = time.perf_counter() - started
    return outcome


def _next_ready(ready: deque[str], states: Mapping[str, str], by_id: Mapping[str, Node],
                executor: Executor, busy: bool, overtaken: dict[str, int],
                max_overtakes: int) -> int | None:
    """Where in ``ready`` the job to start now is, or None to wait for memory.

    The oldest ready job when it fits (always when nothing runs); else, unless it was
    overtaken ``max_overtakes`` times already, the first later one that fits.
    """
    oldest = ready[0]
    if not busy or executor.fits(by_id[oldest].memory):
        return 0
    if overtaken.get(oldest, 0) >= max_overtakes:
        return None
    for index in range(1, len(ready)):
        job_id = ready[index]
        if states[job_id] == "pending" and executor.fits(by_id[job_id].memory):
            overtaken[oldest] = overtaken.get(oldest, 0) + 1
            return index
    return None


def _priority(node: Node) -> tuple[int, str]:
    return KIND_ORDER.get(node.kind, 9), node.id


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."

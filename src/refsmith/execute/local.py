"""The local executor: long-lived worker processes on this machine.

Each worker is a ``spawn`` process that sets itself up once (off-line CRDS or a bounded
CRDS timeout, ``import jwst``, ``gc.freeze()``) and then runs one job at a time, sent over
its own pipe. The pool is written here rather than with ``ProcessPoolExecutor`` so that
a worker's death is attributed to the one job it was running (a killed
``ProcessPoolExecutor`` worker breaks every task in flight), and so that a worker whose
resident memory passed ``recycle_memory`` after a job can be replaced on its own.

Jobs are admitted by memory too: a job fits while its estimate and those of the jobs
running add up to at most ``max_memory``; one larger than ``max_memory`` on its own runs
alone (the DAG loop starts it once nothing runs), with a warning.

Timeouts: a worker says when it starts a job (a job waits in the pipe while a new worker
sets itself up, which is not the job's time); a job still running ``task['timeout']``
seconds later is stopped by killing its worker process (SIGKILL: a plug-in stuck in C code
cannot be interrupted otherwise), which is replaced at once, and reported as failed with
``timed_out`` and ``permanent`` (not retried). What the job wrote under temporary names
stays until the run's end, when ``refsmith run`` removes it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from refsmith.execute.base import Completion, Notice, print_notice
from refsmith.execute.worker import WorkerSettings, append_log, prepare_worker, run_task
from refsmith.util.memory import format_memory

__all__ = ["LocalExecutor", "default_workers"]


def default_workers() -> int:
    """Number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _watch_parent(parent: int) -> None:
    """Exit when the process that started us is gone (no orphan keeps running jobs)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def _worker_main(conn: Connection, settings: dict[str, Any], parent: int) -> None:
    """Body of a worker process: set up, then run tasks until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's business
    # a job log that cannot be written (disk full) loses records; the job's own error
    # says why, and logging must not print its tracebacks on the run's console
    logging.raiseExceptions = False
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if settings.get("eager_setup", True):
        prepare_worker(WorkerSettings(**settings))
    try:
        conn.send({"ready": True, "pid": os.getpid()})
    except (BrokenPipeError, OSError):
        return  # retired (or the run ended) before it was ready
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            conn.send({"started": task.get("id"), "pid": os.getpid()})
        except (BrokenPipeError, OSError):
            return
        result = run_task(task)
        try:
            conn.send(result)
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, slot: int, process: Any, conn: Connection) -> None:
        self.slot = slot
        self.process = process
        self.conn = conn
        self.task_id: str | None = None
        self.memory = 0  # the estimate of the job it runs
        self.timeout = 0.0  # the job's time limit, seconds (0: none)
        self.started: float | None = None  # when the job started (monotonic), once known
        self.log_path = ""
        self.ready = False

    @property
    def name(self) -> str:
        return f"local-{self.slot}:{self.process.pid}"


class LocalExecutor:
    """A pool of long-lived spawn worker processes.

    Parameters
    ----------
    workers : int
        Number of worker processes.
    settings : WorkerSettings
        Worker set-up (CRDS mode, gc freezing).
    max_memory : int, optional
        Bytes the estimates of the jobs running together may add up to (None: no limit).
    recycle_memory : int, optional
        Resident memory (bytes) above which a worker is replaced after its job.
    notice : callable, optional
        Where warnings go (default: stderr).
    """

    name = "local"

    def __init__(self, workers: int, settings: WorkerSettings,
                 max_memory: int | None = None, recycle_memory: int | None = None,
                 notice: Notice = print_notice) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self.settings = settings
        self.max_memory = max_memory
        self.recycle_memory = recycle_memory
        self.notice = notice
        self._warned: set[str] = set()  # jobs said to be larger than max_memory
        self._context = multiprocessing.get_context("spawn")
        self._pool: dict[int, _Worker] = {}
        self._retired: list[Any] = []
        self.recycled = 0
        self.lost = 0
        self.timed_out = 0

    # ------------------------------------------------------------ workers

    def _spawn(self, slot: int) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main, args=(child_conn, self.settings.to_dict(), os.getpid()),
            name=f"refsmith-worker-{slot}", daemon=True,
        )
        process.start()
        child_conn.close()
        worker = _Worker(slot, process, parent_conn)
        self._pool[slot] = worker
        return worker

    def _retire(self, worker: _Worker, *, kill: bool = False) -> None:
        with contextlib.suppress(OSError, ValueError):
            if kill:
                worker.process.kill()
            else:
                worker.conn.send(None)
        with contextlib.suppress(OSError):
            worker.conn.close()
        self._retired.append(worker.process)
        self._reap()

    def _reap(self) -> None:
        alive = []
        for process in self._retired:
            if process.exitcode is None:
                alive.append(process)
            else:
                process.close()
        self._retired = alive

    def start(self) -> None:
        for slot in range(1, self.workers + 1):
            self._spawn(slot)

    # ------------------------------------------------------------ executor API

    def capacity(self) -> int:
        return sum(1 for w in self._pool.values() if w.task_id is None)

    def fits(self, memory: int) -> bool:
        if self.max_memory is None:
            return True
        busy = [w.memory for w in self._pool.values() if w.task_id is not None]
        return not busy or sum(busy) + memory <= self.max_memory

    def submit(self, task: dict[str, Any]) -> str:
        memory = int(task.get("memory") or 0)
        job_id = str(task["id"])
        if self.max_memory is not None and memory > self.max_memory and (
                job_id not in self._warned):
            self._warned.add(job_id)
            self.notice(f"job {job_id} is estimated at {format_memory(memory)}, more than "
                        f"max_memory ({format_memory(self.max_memory)}): it runs alone")
        for worker in self._pool.values():
            if worker.task_id is None:
                worker.task_id = job_id
                worker.memory = memory
                worker.timeout = float(task.get("timeout") or 0.0)
                worker.started = None
                worker.log_path = str(task.get("log_path") or "")
                with contextlib.suppress(BrokenPipeError, OSError):
                    worker.conn.send(task)  # if the worker is dead, wait() reports it
                return worker.name
        raise RuntimeError("no idle worker (check capacity() first)")

    def wait(self, timeout: float) -> list[Completion]:
        self._reap()
        expired = self._expired()
        if expired:
            return expired
        deadlines = [w.started + w.timeout for w in self._pool.values()
                     if w.task_id is not None and w.started is not None and w.timeout > 0]
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        by_conn = {w.conn: w for w in self._pool.values()}
        by_sentinel = {w.process.sentinel: w for w in self._pool.values()}
        ready = wait([*by_conn, *by_sentinel], timeout)
        completions: list[Completion] = []
        handled: set[int] = set()
        for item in ready:
            worker = by_conn.get(item) or by_sentinel.get(item)
            if worker is None or worker.slot in handled:
                continue
            message: Any = None
            if worker.conn in ready or worker.conn.poll():
                with contextlib.suppress(EOFError, OSError):
                    message = worker.conn.recv()
            if isinstance(message, dict) and message.get("ready"):
                worker.ready = True
                continue
            if isinstance(message, dict) and "started" in message:
                if worker.task_id is not None and message["started"] == worker.task_id:
                    worker.started = time.monotonic()
                continue
            if message is not None:
                handled.add(worker.slot)
                completions.append(self._finished(worker, message))
                continue
            # EOF or the process ended: the worker is gone
            handled.add(worker.slot)
            worker.process.join(timeout=5)
            code = worker.process.exitcode
            if worker.task_id is not None:
                self.lost += 1
                how = (f"killed by signal {-code}" if code is not None and code < 0
                       else f"exit code {code}")
                completions.append(Completion(
                    worker.task_id, {"ok": False, "outputs": [], "error":
                                     f"the worker process {worker.process.pid} died ({how}) "
                                     "while running the job"},
                    worker=worker.name, lost=True))
            self._retire(worker, kill=True)
            self._spawn(worker.slot)
        return completions + self._expired()

    def _expired(self) -> list[Completion]:
        """Jobs past their timeout: their workers killed and replaced, the jobs failed."""
        now = time.monotonic()
        completions = []
        for worker in list(self._pool.values()):
            if (worker.task_id is None or worker.started is None or worker.timeout <= 0
                    or now - worker.started < worker.timeout):
                continue
            with contextlib.suppress(OSError, ValueError):
                if worker.conn.poll():
                    continue  # its result (or its end) came in: read it first
            pid, name, task_id = worker.process.pid, worker.name, worker.task_id
            limit = f"{worker.timeout:g}"
            error = (f"timed out after {limit} s: the worker process {pid} was killed and "
                     "replaced (execution.timeout, recipes.<name>.timeout: raise it if the job "
                     "needs longer)")
            append_log(worker.log_path, f"refsmith: {error}")
            self.timed_out += 1
            self._retire(worker, kill=True)
            self._spawn(worker.slot)
            completions.append(Completion(
                task_id, {"ok": False, "outputs": [], "error": error, "permanent": True,
                          "timed_out": True, "seconds": now - worker.started, "pid": pid},
                worker=name))
        return completions

    def _finished(self, worker: _Worker, result: dict[str, Any]) -> Completion:
        task_id, worker.task_id = worker.task_id or str(result.get("id")), None
        worker.memory = 0
        name = worker.name
        recycle = bool(self.recycle_memory
                       and int(result.get("rss") or 0) > self.recycle_memory)
        if recycle:
            self.recycled += 1
            self._retire(worker)
            self._spawn(worker.slot)
        return Completion(task_id, result, worker=name, recycle=recycle)

    def shutdown(self, *, cancel: bool = False) -> None:
        for worker in list(self._pool.values()):
            busy = worker.task_id is not None
            self._retire(worker, kill=cancel and busy)
        self._pool.clear()
        deadline = time.monotonic() + (2.0 if cancel else 30.0)
        for process in self._retired:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                process.terminate()
                process.join(timeout=2)
            if process.exitcode is None:
                process.kill()
                process.join(timeout=2)
        self._reap()

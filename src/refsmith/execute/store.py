"""The run's job store (``<run>/store.sqlite``) and the run-directory lock.

One SQLite database in WAL mode per run directory records every job of the plan: its
state, attempts, start and end times, the worker that ran it, its outputs, its error and
its log file. Only the process that holds the run lock (:class:`RunLock`) writes it; any
other process (``refsmith status``) may read it at any time, even while it is written.

States
------
``pending``  not run yet (or interrupted: it will run on the next ``refsmith run``)
``running``  submitted to a worker
``done``     finished in a run, outputs verified
``failed``   failed on every attempt (error and log kept)
``blocked``  not run because a job it depends on failed (the reason names it)
``cached``   its outputs were already there (an earlier run) and were verified
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refsmith.errors import RefsmithError

__all__ = [
    "FINISHED",
    "STATES",
    "JobRecord",
    "JobStore",
    "RunLock",
    "RunLockedError",
    "StoreWriteError",
]

STATES = ("pending", "running", "done", "failed", "blocked", "cached")
"""Every state a job can be in."""

FINISHED = frozenset({"done", "cached"})
"""States whose outputs dependents may use."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    ended REAL,
    seconds REAL,
    worker TEXT NOT NULL DEFAULT '',
    outputs TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT '',
    log_path TEXT NOT NULL DEFAULT '',
    depends_on TEXT NOT NULL DEFAULT '[]',
    in_plan INTEGER NOT NULL DEFAULT 1,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    job TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    worker TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT 'running',
    error TEXT NOT NULL DEFAULT '',
    peak_rss INTEGER,
    PRIMARY KEY (job, attempt)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Columns added since the first version: (table, column, declaration), added to a store
# made before them.
_ADDED_COLUMNS = (("attempts", "peak_rss", "INTEGER"),)


class RunLockedError(RefsmithError):
    """Another ``refsmith run`` (or ``refsmith plan``) holds the run directory."""


class StoreWriteError(RefsmithError):
    """The job store could not be written (e.g. the disk is full): the run stops (exit
    code 1); the next run resumes from what the store holds."""

    exit_code = 1


RESERVE_BYTES = 256 * 1024
"""Space the store keeps beside itself (``store.sqlite-reserve``) and gives up when a write
fails, so that the writes which leave the store consistent (no job ``running``) find room
on a full disk."""


@dataclass(frozen=True)
class JobRecord:
    """One job as recorded in the store."""

    id: str
    kind: str
    state: str
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    seconds: float | None = None
    worker: str = ""
    outputs: tuple[str, ...] = ()
    error: str = ""
    log_path: str = ""
    depends_on: tuple[str, ...] = ()
    in_plan: bool = True
    updated: float = field(default=0.0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (``refsmith status --format json``)."""
        return {
            "id": self.id, "kind": self.kind, "state": self.state, "attempts": self.attempts,
            "started": self.started, "ended": self.ended, "seconds": self.seconds,
            "worker": self.worker, "outputs": list(self.outputs), "error": self.error,
            "log_path": self.log_path, "depends_on": list(self.depends_on),
            "in_plan": self.in_plan,
        }


class JobStore:
    """The SQLite job store of one run directory.

    Parameters
    ----------
    path : str or Path
        The database file (``<run>/store.sqlite``); created with its tables if needed.
    readonly : bool, optional
        Open for reading only (``refsmith status``); the file must exist.

    Notes
    -----
    WAL mode with ``synchronous=NORMAL``: every state change is one small transaction,
    readable by other processes immediately and intact after a SIGKILL of the writer.
    Keep the run directory on a local disk (WAL does not work over NFS).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            if not self.path.is_file():
                raise RefsmithError(f"{self.path}: no job store here (not a run directory, "
                                    "or `refsmith run` never started in it)")
            uri = f"file:{self.path.resolve()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, timeout=30)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30)
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                self._db.close()
                raise self._write_error(exc) from None
            with self._writing():
                self._db.executescript(_SCHEMA)
                self._add_columns()
            self._keep_reserve()
        self._db.row_factory = sqlite3.Row

    @property
    def reserve_path(self) -> Path:
        """The space kept for the store's last writes on a full disk (see
        :data:`RESERVE_BYTES`)."""
        return self.path.with_name(self.path.name + "-reserve")

    def _keep_reserve(self) -> None:
        """Make the reserve file if it is not there (nothing when there is no room)."""
        reserve = self.reserve_path
        if reserve.is_file() and reserve.stat().st_size >= RESERVE_BYTES:
            return
        try:
            fd = os.open(reserve, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            finally:
                os.close(fd)
        except OSError:  # no room (or no fallocate): run without it
            with contextlib.suppress(OSError):
                reserve.unlink()

    def _write_error(self, exc: sqlite3.Error) -> StoreWriteError:
        """The error to raise for a failed write; gives up the reserve, so the writes
        that follow (putting running jobs back to pending) find room."""
        with contextlib.suppress(OSError):
            self.reserve_path.unlink()
        text = str(exc) or type(exc).__name__
        hint = ("; free some space and run again to resume" if "full" in text.lower()
                or "i/o" in text.lower() else "")
        return StoreWriteError(f"cannot write the job store {self.path}: {text}{hint}")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a failed write (disk full...) is a
        :class:`StoreWriteError` naming the store, and the transaction is rolled back."""
        try:
            with self._db:
                yield self._db
        except sqlite3.Error as exc:
            raise self._write_error(exc) from None

    def _add_columns(self) -> None:
        """Bring a store made by an earlier version up to date (:data:`_ADDED_COLUMNS`)."""
        for table, column, declaration in _ADDED_COLUMNS:
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    # ------------------------------------------------------------ life cycle

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ writing

    def sync_plan(self, jobs: Iterable[tuple[str, str, Sequence[str], str]]) -> None:
        """Record the jobs of the current plan: ``(id, kind, depends_on, log_path)``.

        New jobs are added as ``pending``; known jobs keep their state and history.
        Jobs of an earlier plan that are not in this one are kept, flagged ``in_plan=0``
        (``refsmith status`` shows them apart).
        """
        now = time.time()
        rows = list(jobs)
        with self._writing():
            self._db.execute("UPDATE jobs SET in_plan = 0")
            for job_id, kind, depends_on, log_path in rows:
                self._db.execute(
                    "INSERT INTO jobs (id, kind, state, depends_on, log_path, in_plan, updated) "
                    "VALUES (?, ?, 'pending', ?, ?, 1, ?) "
                    "ON CONFLICT(id) DO UPDATE SET in_plan = 1, kind = excluded.kind, "
                    "depends_on = excluded.depends_on, log_path = excluded.log_path",
                    (job_id, kind, json.dumps(list(depends_on)), log_path, now),
                )

    def recover(self) -> list[str]:
        """Put jobs left ``running`` by a killed run back to ``pending``; return their ids."""
        now = time.time()
        with self._writing():
            ids = [r[0] for r in self._db.execute("SELECT id FROM jobs WHERE state='running'")]
            self._db.execute(
                "UPDATE jobs SET state='pending', error='interrupted (the run stopped while "
                "this job was running)', updated=? WHERE state='running'", (now,))
            self._db.execute(
                "UPDATE attempts SET outcome='interrupted', ended=? WHERE outcome='running'",
                (now,))
        return ids

    def set_state(self, job_id: str, state: str, *, error: str = "",
                  outputs: Sequence[str] | None = None) -> None:
        """Set a job's state (``pending``, ``blocked``, ``cached``...) and its error."""
        if state not in STATES:
            raise ValueError(f"unknown job state {state!r}")
        with self._writing():
            if outputs is None:
                self._db.execute("UPDATE jobs SET state=?, error=?, updated=? WHERE id=?",
                                 (state, error, time.time(), job_id))
            else:
                self._db.execute(
                    "UPDATE jobs SET state=?, error=?, outputs=?, updated=? WHERE id=?",
                    (state, error, json.dumps(list(outputs)), time.time(), job_id))

    def start_attempt(self, job_id: str, worker: str = "", *,
                      started: float | None = None) -> int:
        """Mark a job ``running`` and open a new attempt (begun at ``started``, a
        ``time.time()``, default now); return the attempt number."""
        now = time.time() if started is None else started
        with self._writing():
            row = self._db.execute("SELECT attempts FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            attempt = int(row[0]) + 1
            self._db.execute(
                "UPDATE jobs SET state='running', attempts=?, started=?, ended=NULL, "
                "seconds=NULL, worker=?, error='', updated=? WHERE id=?",
                (attempt, now, worker, now, job_id))
            self._db.execute(
                "INSERT OR REPLACE INTO attempts (job, attempt, started, worker) "
                "VALUES (?, ?, ?, ?)", (job_id, attempt, now, worker))
        return attempt

    def set_worker(self, job_id: str, worker: str) -> None:
        """Record which worker runs the job's current attempt."""
        with self._writing():
            self._db.execute("UPDATE jobs SET worker=? WHERE id=?", (worker, job_id))
            self._db.execute(
                "UPDATE attempts SET worker=? WHERE job=? AND attempt="
                "(SELECT attempts FROM jobs WHERE id=?)", (worker, job_id, job_id))

    def finish_attempt(self, job_id: str, state: str, *, outputs: Sequence[str] = (),
                       error: str = "", seconds: float | None = None, worker: str = "",
                       log_path: str | None = None, peak_rss: int | None = None) -> None:
        """Close the current attempt with its outcome and set the job's state.

        ``state`` is ``done``, ``failed``, or ``pending`` (the attempt failed and the job
        will be retried). ``peak_rss``: the worker's peak resident memory during the
        attempt, in bytes (None: not measured).
        """
        if state not in ("done", "failed", "pending"):
            raise ValueError(f"an attempt ends done, failed or pending, not {state!r}")
        now = time.time()
        outcome = "ok" if state == "done" else "failed"
        with self._writing():
            row = self._db.execute("SELECT attempts, started, log_path, worker FROM jobs "
                                   "WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            attempt, started, old_log, old_worker = row
            if seconds is None and started is not None:
                seconds = now - started
            self._db.execute(
                "UPDATE jobs SET state=?, ended=?, seconds=?, outputs=?, error=?, worker=?, "
                "log_path=?, updated=? WHERE id=?",
                (state, now, seconds, json.dumps(list(outputs)), error,
                 worker or old_worker, log_path or old_log, now, job_id))
            self._db.execute(
                "UPDATE attempts SET ended=?, outcome=?, error=?, worker=?, peak_rss=? "
                "WHERE job=? AND attempt=?",
                (now, outcome, error, worker or old_worker, peak_rss, job_id, attempt))

    def mark_in_plan(self, ids: Iterable[str]) -> None:
        """Flag jobs of an earlier plan as part of this run's view (``in_plan=1``)."""
        with self._writing():
            self._db.executemany("UPDATE jobs SET in_plan = 1 WHERE id = ?",
                                 [(i,) for i in ids])

    def add_cached(self, job_id: str, outputs: Sequence[str]) -> None:
        """Record products reused from earlier runs as a ``cached`` entry."""
        now = time.time()
        with self._writing():
            self._db.execute(
                "INSERT INTO jobs (id, kind, state, outputs, in_plan, updated) "
                "VALUES (?, 'calibration', 'cached', ?, 1, ?) ON CONFLICT(id) DO UPDATE SET "
                "in_plan = 1, state = 'cached', outputs = excluded.outputs",
                (job_id, json.dumps(list(outputs)), now))

    def set_meta(self, key: str, value: Any) -> None:
        """Store a run-level value (JSON)."""
        with self._writing():
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                             (key, json.dumps(value)))

    def record_run(self, entry: dict[str, Any]) -> None:
        """Add one ``refsmith run`` to the run history (meta ``runs``), or update the entry
        with the same ``started`` (a run records itself when it starts and when it ends)."""
        runs = [r for r in self.runs() if r.get("started") != entry.get("started")]
        self.set_meta("runs", [*runs, entry])

    # ------------------------------------------------------------ reading

    def runs(self) -> list[dict[str, Any]]:
        """Every recorded ``refsmith run``, oldest first: ``started``, ``ended`` (None while
        it runs or when it was killed), ``seconds``, ``executed``, ``failed``, ``counts``."""
        runs = self.meta("runs", [])
        return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []

    def meta(self, key: str, default: Any = None) -> Any:
        """A run-level value set with :meth:`set_meta`."""
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def jobs(self, *, in_plan_only: bool = False) -> list[JobRecord]:
        """Every job record, ordered by id."""
        sql = "SELECT * FROM jobs" + (" WHERE in_plan=1" if in_plan_only else "") + " ORDER BY id"
        return [_record(row) for row in self._db.execute(sql)]

    def job(self, job_id: str) -> JobRecord | None:
        """One job record, or None."""
        row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else _record(row)

    def counts(self, *, in_plan_only: bool = True) -> dict[str, int]:
        """Number of jobs per state (every state present, zeros included)."""
        sql = "SELECT state, COUNT(*) FROM jobs" + (" WHERE in_plan=1" if in_plan_only else "")
        counts = dict.fromkeys(STATES, 0)
        for state, count in self._db.execute(sql + " GROUP BY state"):
            counts[state] = count
        return counts

    def attempts(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """The attempt history (every execution of a job), oldest first: ``job``,
        ``attempt``, ``started``, ``ended``, ``worker``, ``outcome``, ``error`` and
        ``peak_rss`` (bytes, None when not measured or in a store made before it was)."""
        sql = "SELECT * FROM attempts"
        args: tuple[Any, ...] = ()
        if job_id is not None:
            sql += " WHERE job=?"
            args = (job_id,)
        rows = [dict(row) for row in self._db.execute(sql + " ORDER BY started, job", args)]
        for row in rows:
            row.setdefault("peak_rss", None)
        return rows


def _record(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=row["id"], kind=row["kind"], state=row["state"], attempts=row["attempts"],
        started=row["started"], ended=row["ended"], seconds=row["seconds"],
        worker=row["worker"], outputs=tuple(json.loads(row["outputs"])), error=row["error"],
        log_path=row["log_path"], depends_on=tuple(json.loads(row["depends_on"])),
        in_plan=bool(row["in_plan"]), updated=row["updated"],
    )


class RunLock:
    """An exclusive lock on a run directory (``<run>/run.lock``, ``fcntl.flock``).

    The lock belongs to the open file: it is released when the process exits, even on
    SIGKILL, so a crashed run never leaves a stale lock behind. The holder's pid and host
    are written into the file for the message a second run shows.

    ``refsmith plan`` takes it too (``command="plan"``), so that it never rewrites the
    plan.json of a run in progress.

    Parameters
    ----------
    run_dir : str or Path
        The run directory (created if needed).
    command : str
        The refsmith command taking the lock (``run`` or ``plan``), for the message a
        second one shows.
    """

    def __init__(self, run_dir: str | Path, command: str = "run") -> None:
        self.path = Path(run_dir) / "run.lock"
        self.command = command
        self._fd: int | None = None
        self._made_dir = False  # acquire created the run directory

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunLockedError` naming the holder."""
        import fcntl

        try:
            self._made_dir = not self.path.parent.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RefsmithError(f"cannot create {exc.filename or self.path}: "
                                f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                match = re.fullmatch(r"(.*?) \(refsmith (\w+)\)", holder)
                command, holder = (match[2], match[1]) if match else ("run", holder)
                raise RunLockedError(
                    f"the run directory {self.path.parent} is in use by another refsmith "
                    f"{command} ({holder or 'holder unknown'}); wait for it to finish or stop "
                    "it, or use another --run-dir") from None
            raise RefsmithError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        with contextlib.suppress(OSError):  # e.g. a full disk: the lock holds anyway
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} (refsmith "
                          f"{self.command})\n".encode(), 0)
        self._fd = fd

    def holder(self) -> str | None:
        """Who holds the lock now (the lock file's text), or None when nobody does.

        Asks without taking it for longer than a moment (a shared lock, released at once),
        and without creating the lock file: a run directory no run ever locked is free.
        """
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = ""
            with contextlib.suppress(OSError):
                text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            return text or "holder unknown"
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        """Release the lock (idempotent). A run directory that acquiring it created and
        that holds nothing else (a plan that failed) is removed with it."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            with contextlib.suppress(OSError):
                if self._made_dir and os.listdir(self.path.parent) == [self.path.name]:
                    self.path.unlink()
                    self.path.parent.rmdir()
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def held(self) -> Iterator[RunLock]:
        """Context manager: acquire, yield, release."""
        self.acquire()
        try:
            yield self
        finally:
            self.release()

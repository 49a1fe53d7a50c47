"""Everything the report reads from a run directory, gathered once.

The report depends on the job store through one function only, :func:`read_store`;
everything else comes from ``plan.json`` and the files on disk.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refsmith.errors import RefsmithError

__all__ = ["RunData", "StoreView", "exposures_by_path", "load_run", "log_tail", "read_store",
           "wall_seconds", "working_run"]


@dataclass(frozen=True)
class StoreView:
    """What the report needs from ``store.sqlite``.

    Attributes
    ----------
    jobs : list of dict
        Job records of the current plan (``JobRecord.to_dict()`` keys: ``id``, ``kind``,
        ``state``, ``attempts``, ``started``, ``ended``, ``seconds``, ``worker``,
        ``outputs``, ``error``, ``log_path``).
    run : dict
        The ``run`` meta value (``started``, ``jwst``, ``offline``, ...), or empty.
    last_run : dict
        The ``last_run`` meta value (the run summary, ``seconds``, ``ended``), or empty.
    runs : list of dict
        Every recorded ``refsmith run``, oldest first (``started``, ``ended``,
        ``seconds``, ``executed``, ``failed``); empty in a store made before runs were
        recorded.
    """

    jobs: list[dict[str, Any]]
    run: dict[str, Any] = field(default_factory=dict)
    last_run: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RunData:
    """A run directory as the report sees it.

    Attributes
    ----------
    run_dir : Path
        The run directory (absolute).
    plan : dict
        The parsed ``plan.json``.
    store : StoreView or None
        The job store, or None when no job was ever run here (a plan-only directory).
    final_files : list of Path
        ``final/<recipe>/*.fits``, sorted.
    individual_files : list of Path
        ``reffiles/<recipe>/*.fits``, sorted.
    """

    run_dir: Path
    plan: dict[str, Any]
    store: StoreView | None
    final_files: list[Path]
    individual_files: list[Path]


def read_store(path: Path) -> StoreView | None:
    """Read the job records and run metadata of a job store (None when it is absent).

    Parameters
    ----------
    path : Path
        ``<run>/store.sqlite``.

    Returns
    -------
    StoreView or None
        The records of the jobs of the current plan and the run metadata.
    """
    if not path.is_file():
        return None
    from refsmith.execute.store import JobStore

    try:
        with JobStore(path, readonly=True) as store:
            jobs = [record.to_dict() for record in store.jobs(in_plan_only=True)]
            run = store.meta("run") or {}
            last_run = store.meta("last_run") or {}
            runs = store.runs()
    except sqlite3.Error as exc:
        raise RefsmithError(f"{path}: the job store cannot be read ({exc})") from None
    return StoreView(jobs=jobs, run=dict(run), last_run=dict(last_run), runs=runs)


def load_run(run_dir: str | Path) -> RunData:
    """Gather ``plan.json``, the job store and the reference files of a run directory.

    Parameters
    ----------
    run_dir : str or Path
        The run directory (``<output root>/<run>``).

    Returns
    -------
    RunData
        The run as the report sees it.

    Raises
    ------
    RefsmithError
        When the directory has no readable ``plan.json``.
    """
    directory = Path(run_dir).expanduser().resolve()
    plan_path = directory / "plan.json"
    try:
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RefsmithError(f"{directory}: no plan.json here; give the run directory "
                            "that `refsmith plan` or `refsmith run` wrote") from None
    except (OSError, ValueError) as exc:
        raise RefsmithError(f"{plan_path}: cannot be read as a plan ({exc})") from None
    if not isinstance(plan, dict):
        raise RefsmithError(f"{plan_path}: not a refsmith plan (no JSON object)")
    return RunData(
        run_dir=directory,
        plan=plan,
        store=read_store(directory / "store.sqlite"),
        final_files=sorted((directory / "final").glob("*/*.fits")),
        individual_files=sorted((directory / "reffiles").glob("*/*.fits")),
    )


def working_run(store: StoreView | None) -> dict[str, Any] | None:
    """The latest recorded run that executed jobs (None when none did or none is recorded).

    A re-run that found everything done executes nothing; the run that did the work is
    the one whose timing matters.
    """
    if store is None:
        return None
    worked = [r for r in store.runs if (r.get("executed") or 0) > 0]
    return worked[-1] if worked else None


def wall_seconds(store: StoreView | None) -> float | None:
    """Wall time of the run that did the work, if known.

    That run's recorded ``seconds`` (:func:`working_run`); in a store without a run
    history, the last run summary's ``seconds``, else the span from the first job start
    to the last job end.
    """
    if store is None:
        return None
    worked = working_run(store)
    if worked is not None and isinstance(worked.get("seconds"), (int, float)):
        return float(worked["seconds"])
    seconds = store.last_run.get("seconds")
    if isinstance(seconds, (int, float)) and seconds > 0:
        return float(seconds)
    started = [j["started"] for j in store.jobs if j.get("started") is not None]
    ended = [j["ended"] for j in store.jobs if j.get("ended") is not None]
    if started and ended and max(ended) >= min(started):
        return float(max(ended) - min(started))
    return None


def log_tail(path: str, *, lines: int = 30, max_bytes: int = 32 * 1024) -> list[str]:
    """The last ``lines`` lines of a log file ([] when it cannot be read)."""
    if not path:
        return []
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def exposures_by_path(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Exposure records of a plan keyed by path."""
    return {e["path"]: e for e in plan.get("exposures", [])}

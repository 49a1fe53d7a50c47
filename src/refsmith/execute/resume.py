"""What a run does not need to do again: each job's state before the run, decided from
the files on disk (not only from the store), and the jobs of earlier plans whose
products are still there. Used by :func:`refsmith.running.run`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from refsmith.calibrate.products import installed_jwst_version, outputs_valid, stale_reason
from refsmith.execute.dag import Node
from refsmith.execute.store import FINISHED, JobStore
from refsmith.jobs.records import CalibrationJob

ForceRedo = Literal["calibration", "reffiles", "all"] | None


def job_nodes(calibration_jobs: Sequence[CalibrationJob], reffile_jobs: Sequence[Any],
           combine_jobs: Sequence[Any], previous: Mapping[str, Any], logs: Path,
           force_redo: ForceRedo, references: Mapping[str, str]) -> list[Node]:
    """DAG nodes with their state before this run, decided from the files on disk, and
    their jobs' memory estimates."""
    jwst_version = installed_jwst_version()
    nodes: list[Node] = []
    pending: set[str] = set()
    for job in calibration_jobs:
        state = "pending"
        if force_redo not in ("calibration", "all") and outputs_valid(job) and not any(
            stale_reason(Path(o.path), references, jwst_version) for o in job.outputs
        ):
            before = previous.get(job.id)
            state = "done" if before is not None and before.state == "done" else "cached"
        if state == "pending":
            pending.add(job.id)
        nodes.append(Node(job.id, "calibration", job.to_dict(), tuple(job.depends_on),
                          str(logs / f"{job.id}.log"), state, job.memory))
    redo = force_redo in ("reffiles", "all")
    for kind, jobs in (("reffile", reffile_jobs), ("combine", combine_jobs)):
        for job in jobs:
            inputs = [i.path for i in job.inputs] if kind == "reffile" else list(job.inputs)
            before = previous.get(job.id)
            done = (not redo and before is not None and before.state in FINISHED
                    and _newer_than_inputs(job.output, inputs)
                    and not any(d in pending for d in job.depends_on))
            state = before.state if done and before is not None else "pending"
            if state == "pending":
                pending.add(job.id)
            nodes.append(Node(job.id, kind, job.to_dict(), tuple(job.depends_on),
                              str(logs / f"{job.id}.log"), state, job.memory))
    return nodes


def _newer_than_inputs(output: str, inputs: Sequence[str]) -> bool:
    """Whether ``output`` was made after every input last changed (mtime, or ctime: a
    file rewritten with its mtime put back still has a new ctime)."""
    try:
        made = os.stat(output).st_mtime_ns
        for path in inputs:
            info = os.stat(path)
            if max(info.st_mtime_ns, info.st_ctime_ns) > made:
                return False
        return True
    except OSError:
        return False


def keep_earlier_products(store: JobStore, previous: Mapping[str, Any],
                           planned: set[str]) -> None:
    """Jobs of an earlier plan whose products are on disk stay visible as done.

    After a resume the plan starts from what earlier runs made, so their jobs are no
    longer in it; they remain in the store (``in_plan`` 1 when all outputs are there).
    """
    store.mark_in_plan(
        job_id for job_id, record in previous.items()
        if job_id not in planned and record.state in FINISHED and record.outputs
        and all(Path(p).is_file() for p in record.outputs)
    )

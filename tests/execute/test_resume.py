"""What a run keeps from before (resume.job_nodes): a reference-file or combine job whose
output is on disk stays done only while none of the jobs it depends on is to run again."""

from __future__ import annotations

import os
import time
from pathlib import Path

from refsmith.execute.resume import job_nodes
from refsmith.execute.store import JobRecord
from refsmith.jobs.records import (
    CalibrationJob,
    CombineJob,
    ProductOutput,
    ReffileInput,
    ReffileJob,
)


def write(path: Path, text: str = "x", mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def a_small_plan(tmp_path: Path):
    """One calibration job (its product on disk), the reference-file job reading that
    product and the combine job of that file, both outputs newer than their inputs."""
    now = time.time()  # outputs made after their inputs (mtimes and ctimes)
    product = write(tmp_path / "calibrated" / "a_linearity.fits")
    calibration = CalibrationJob(
        id="cal-a", exposure=str(tmp_path / "raw" / "a_uncal.fits"), instrument="NIRCAM",
        start_file=str(tmp_path / "raw" / "a_uncal.fits"), start_steps=(),
        steps_to_run=("dq_init",), steps_to_skip=(),
        outputs=(ProductOutput(("dq_init",), str(product)),))
    individual = write(tmp_path / "run" / "reffiles" / "dark" / "g1.fits", mtime=now + 100)
    reffile = ReffileJob(
        id="reffile-dark-g1", recipe="dark", reftype="dark", group="dark-g1", plugin="dark",
        inputs=(ReffileInput("D1", calibration.exposure, str(product)),),
        output=str(individual), depends_on=("cal-a",))
    final = write(tmp_path / "run" / "final" / "dark" / "dark.fits", mtime=now + 200)
    combine = CombineJob(id="combine-dark", recipe="dark", reftype="dark", plugin="dark",
                         partition=(("DETECTOR", "NRCA1"),),
                         inputs=(str(individual),), output=str(final),
                         depends_on=("reffile-dark-g1",))
    previous = {job.id: JobRecord(job.id, kind, "done", attempts=1)
                for job, kind in ((calibration, "calibration"), (reffile, "reffile"),
                                  (combine, "combine"))}
    return calibration, reffile, combine, previous


def states(tmp_path: Path, force_redo=None, calibration_in_plan: bool = True):
    calibration, reffile, combine, previous = a_small_plan(tmp_path)
    nodes = job_nodes([calibration] if calibration_in_plan else [], [reffile], [combine],
                      previous, tmp_path / "logs", force_redo, {})
    return {node.id: node.state for node in nodes}


def test_a_reffile_job_is_redone_when_a_job_it_depends_on_runs_again(tmp_path):
    """--force-redo calibration: the calibration job runs again, so the reference-file
    job reading its product and the combine job after it run again too, although their
    outputs are on disk, newer than their inputs, and done in the store."""
    assert states(tmp_path, force_redo="calibration") == {
        "cal-a": "pending", "reffile-dark-g1": "pending", "combine-dark": "pending"}


def test_a_reffile_job_whose_inputs_are_done_stays_done(tmp_path):
    """The calibration not planned again (its product reused): the reference-file and
    combine jobs with outputs newer than their inputs stay done."""
    assert states(tmp_path, calibration_in_plan=False) == {
        "reffile-dark-g1": "done", "combine-dark": "done"}

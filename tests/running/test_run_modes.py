"""`refsmith run` modes: --dry-run, products reused by another run directory, --force-redo.

Real calwebb_detector1 off-line on two tiny synthetic darks (see test_run.py's data set).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from refsmith.config import load_config
from refsmith.execute.store import JobStore
from refsmith.report.build import build_report
from refsmith.running import RunOptions, run
from run_dataset import make_dataset, plan_jobs, products

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("modes")
    config = load_config(make_dataset(root, 2))
    summary = run(config, options=RunOptions(progress="none", report=False))
    assert summary.exit_code == 0, summary.to_dict()
    return {"root": root, "config": config, "summary": summary,
            "mtimes": {n: p.stat().st_mtime_ns for n, p in products(root).items()}}


def test_dry_run_plans_and_executes_nothing(tmp_path):
    config = load_config(make_dataset(tmp_path, 2))
    summary = run(config, options=RunOptions(progress="none", dry_run=True))
    assert summary.dry_run and summary.exit_code == 0 and summary.executed == 0
    assert (summary.run_dir / "plan.json").is_file()
    assert len(plan_jobs(summary.run_dir)) == 2  # one merged job per exposure
    assert not products(tmp_path)  # nothing calibrated
    assert not (summary.run_dir / "store.sqlite").exists()


def test_another_run_directory_reuses_the_calibrated_products(first_run):
    root, config = first_run["root"], first_run["config"]
    before = {n: p.stat().st_mtime_ns for n, p in products(root).items()}
    summary = run(config, options=RunOptions(progress="none", report=False,
                                             run_dir=str(root / "out" / "second")))
    assert summary.exit_code == 0, summary.to_dict()
    # the calibration is already done: nothing of it is planned or executed again
    assert plan_jobs(summary.run_dir) == []
    with JobStore(summary.run_dir / "store.sqlite", readonly=True) as store:
        records = store.jobs()
    cached = [r for r in records if r.state == "cached"]
    assert cached and all(Path(p).is_file() for r in cached for p in r.outputs)
    executed = [r for r in records if r.state == "done"]
    assert executed and all(not r.id.startswith("cal-") for r in executed)
    unchanged = {n: p.stat().st_mtime_ns for n, p in products(root).items()}
    assert unchanged == before
    report = build_report(summary.run_dir).read_text()
    assert "0 calibration" in report and "every grouped input was already calibrated" in report


def reffile_outputs(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Reference-file and combine jobs -> (attempts, their output's mtime_ns)."""
    with JobStore(run_dir / "store.sqlite", readonly=True) as store:
        return {r.id: (r.attempts, Path(r.outputs[0]).stat().st_mtime_ns)
                for r in store.jobs() if r.kind in ("reffile", "combine") and r.in_plan}


def test_force_redo_calibration_remakes_the_products(first_run):
    root, config = first_run["root"], first_run["config"]
    run_dir = first_run["summary"].run_dir
    before = reffile_outputs(run_dir)
    assert len(before) == 4  # dark and readnoise: one reffile and one combine job each
    summary = run(config, options=RunOptions(progress="none", report=False,
                                             force_redo="calibration"))
    assert summary.exit_code == 0, summary.to_dict()
    assert summary.executed >= 2  # both exposures calibrated again
    assert summary.superseded  # the earlier products were set aside, not deleted
    remade = {n: p.stat().st_mtime_ns for n, p in products(root).items()}
    assert set(remade) == set(first_run["mtimes"])
    assert all(remade[n] > first_run["mtimes"][n] for n in remade)
    # the reference files are made again from the new products: every job ran once more
    after = reffile_outputs(run_dir)
    assert set(after) == set(before)
    for job_id, (attempts, mtime) in after.items():
        assert attempts == before[job_id][0] + 1, job_id
        assert mtime > before[job_id][1], job_id
    assert summary.executed == 2 + len(before)


def test_save_steps_fitopt_keeps_the_optional_ramp_fit_product(tmp_path):
    config_path = make_dataset(tmp_path, 2)
    text = config_path.read_text().replace(
        "readnoise: {imtypes: DD, steps: dq_init-}",
        "readnoise: {imtypes: DD, steps: ramp_fit-, save_steps: [fitopt],"
        " reftype: superbias, plugin: 'example_plugin:MedianBias'}")
    assert "fitopt" in text
    config_path.write_text(text)
    config = load_config(config_path)
    summary = run(config, options=RunOptions(progress="none", report=False))
    with JobStore(summary.run_dir / "store.sqlite", readonly=True) as store:
        records = {r.id: r for r in store.jobs()}
    assert all(r.state == "done" for r in records.values() if r.kind == "calibration")
    # (the built-in readnoise reads ramps: plan refuses `ramp_fit-` for it, test_plugin_checks;
    # this example plug-in declares no such need)
    errors = {r.id: r.error for r in records.values() if r.state != "done"}
    assert not errors, errors
    fitopt = [o for j in plan_jobs(summary.run_dir) for o in j.outputs if o.kind == "fitopt"]
    assert len(fitopt) == 2  # one per exposure, made by the job that runs ramp_fit
    assert all(Path(o.path).is_file() for o in fitopt)
    assert {Path(o.path).name for o in fitopt} <= set(products(tmp_path))
    again = run(config, options=RunOptions(progress="none", report=False))
    with JobStore(again.run_dir / "store.sqlite", readonly=True) as store:
        redone = [r.id for r in store.jobs() if r.kind == "calibration"
                  and r.attempts != records[r.id].attempts]
    assert redone == []  # resume accepts the fitopt files: no calibration again

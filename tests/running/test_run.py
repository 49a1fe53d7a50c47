"""`refsmith run` end to end: real calwebb_detector1, synthetic NIRCam data, off-line CRDS.

Tiny exposures (1 x 5 x 64 x 64, SUB64P) with synthetic reference files. One run of a
small data set (with one corrupt exposure) is shared by several tests; the kill -9, Ctrl-C
and lock tests drive ``refsmith run`` as a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from refsmith.calibrate.products import outputs_valid, provenance_path
from refsmith.config import load_config
from refsmith.execute.store import JobStore, RunLockedError
from refsmith.execute.worker import PLUGINS_MISSING
from refsmith.jobs.records import CalibrationJob
from refsmith.running import RunOptions, run, status
from run_dataset import (
    attempts,
    calibration_done,
    exposure_name,
    make_dataset,
    plan_jobs,
    products,
    start_run,
    stop,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def one_go(tmp_path_factory):
    root = tmp_path_factory.mktemp("one_go")
    config_path = make_dataset(root, 5, corrupt=4)
    config = load_config(config_path)
    summary = run(config, options=RunOptions(progress="none"))
    run_dir = summary.run_dir
    with JobStore(run_dir / "store.sqlite", readonly=True) as store:
        records = store.jobs()
    first = {"summary": summary, "attempts": attempts(run_dir), "jobs": plan_jobs(run_dir),
             "records": records,
             "mtimes": {n: p.stat().st_mtime_ns for n, p in products(root).items()}}
    # recycle_memory 1MB: every worker is replaced after its job (two attempts, two workers)
    again = run(config, options=RunOptions(progress="none", recycle_memory="1MB", workers=1))
    return {"root": root, "config": config, "run_dir": run_dir, "first": first,
            "again": again, "jobs": first["jobs"], "replanned": plan_jobs(run_dir)}


def corrupt_job(jobs: list[CalibrationJob]) -> CalibrationJob:
    return next(j for j in jobs if Path(j.exposure).name == exposure_name(4))


def test_outputs_have_exactly_their_target_state(one_go):
    good = [j for j in one_go["jobs"] if j is not corrupt_job(one_go["jobs"])]
    assert len(good) == 4
    for job in good:
        assert outputs_valid(job), job.id
        final = fits.getheader(job.final_output.path, 0)
        assert final["S_LINEAR"] == "COMPLETE" and final["S_REFPIX"] == "COMPLETE"
        assert final.get("S_DARK", "SKIPPED") == "SKIPPED"
        intermediate = next(o for o in job.outputs if o.steps[-1] == "dq_init")
        header = fits.getheader(intermediate.path, 0)
        assert header["S_DQINIT"] == "COMPLETE"
        assert header.get("S_SATURA", "SKIPPED") == "SKIPPED"
        sidecar = json.loads(provenance_path(job.final_output.path).read_text())
        assert sidecar["jwst"] and sidecar["job"] == job.id
    logs = list((one_go["run_dir"] / "logs").glob("cal-*.log"))
    assert len(logs) == 5 and all("stpipe" in p.read_text() for p in logs)


def test_a_corrupt_input_fails_alone_and_blocks_its_dependents(one_go):
    summary = one_go["first"]["summary"]
    assert summary.exit_code == 1
    bad = corrupt_job(one_go["jobs"])
    failure = next(f for f in summary.failures if f["id"] == bad.id)
    assert exposure_name(4) in failure["error"]
    assert Path(failure["log"]).is_file()
    assert one_go["first"]["attempts"][bad.id] == 2  # retries: 1
    blocked = {b["id"]: b["reason"] for b in summary.blocked}
    assert f"depends on {bad.id}, which failed" in blocked["reffile-dark-NRCA1-SUB64P-RAPID-001"]
    assert not any(p.name.startswith(exposure_name(4)[:-11]) for p in
                   products(one_go["root"]).values())
    # every good exposure still went through
    good = {j.id for j in one_go["jobs"]} - {bad.id}
    assert all(one_go["first"]["attempts"][i] == 1 for i in good)


def test_reference_file_jobs_run_after_their_inputs(one_go):
    with JobStore(one_go["run_dir"] / "store.sqlite", readonly=True) as store:
        readnoise = store.job("reffile-readnoise-NRCA1-SUB64P-RAPID-001")
        combine = store.job("combine-readnoise-NRCA1-SUB64P-RAPID")
    assert PLUGINS_MISSING not in readnoise.error
    assert readnoise.state == "done", readnoise.error
    assert combine.state == "done", combine.error
    assert all(Path(p).is_file() for p in readnoise.outputs + combine.outputs)
    records = {r.id: r for r in one_go["first"]["records"]}
    first = records[readnoise.id]
    assert first.depends_on and set(first.depends_on) <= {j.id for j in one_go["jobs"]}
    assert first.started >= max(records[i].ended for i in first.depends_on)


def test_a_resumed_run_redoes_nothing_that_finished(one_go):
    before, again = one_go["first"], one_go["again"]
    now = attempts(one_go["run_dir"])
    bad = corrupt_job(one_go["jobs"]).id
    for job_id, count in before["attempts"].items():
        if job_id.startswith("cal-") and job_id != bad:
            assert now[job_id] == count == 1, job_id  # no second pipeline execution
    mtimes = {n: p.stat().st_mtime_ns for n, p in products(one_go["root"]).items()}
    assert mtimes == before["mtimes"]  # no product rewritten
    assert now[bad] == 4  # the failed job is tried again (2 attempts per run)
    with JobStore(one_go["run_dir"] / "store.sqlite", readonly=True) as store:
        workers = [a["worker"] for a in store.attempts(bad)][2:]
    assert len(set(workers)) == 2, workers  # recycled after each job (recycle_memory)
    # the second plan starts from the products of the first run: only the failed job is left
    assert [j.id for j in one_go["replanned"]] == [bad]
    assert again.counts["done"] >= 4 and again.counts["running"] == 0


def test_status_reports_states_and_failure_logs(one_go, capsys):
    from refsmith.cli import main

    report = status(one_go["run_dir"])
    assert report["counts"]["failed"] >= 1 and report["counts"]["running"] == 0
    failure = report["failures"][0]
    assert failure["log_tail"] and "ReaderError" in " ".join(failure["log_tail"])
    assert main(["status", str(one_go["run_dir"]), "--format", "json"]) == 1  # failures
    printed = json.loads(capsys.readouterr().out)
    assert printed["counts"] == report["counts"]
    assert {j["state"] for j in printed["jobs"]} >= {"done", "failed", "blocked"}
    # text: failed and blocked jobs always listed, finished ones only the --recent last
    assert main(["status", str(one_go["run_dir"]), "--recent", "0"]) == 1
    text = capsys.readouterr().out
    failed = [j["id"] for j in report["jobs"] if j["state"] in ("failed", "blocked")]
    assert failed and all(job in text for job in failed)
    done = [j["id"] for j in report["jobs"] if j["state"] == "done"]
    assert not any(job in text for job in done)
    assert f"not listed: {len(done)} done" in text
    assert main(["status", str(one_go["run_dir"]), "--all"]) == 1
    text = capsys.readouterr().out
    assert all(j["id"] in text for j in report["jobs"]) and "not listed" not in text


def test_kill_9_midway_then_resume_equals_one_go(one_go, tmp_path):
    count = 6  # calibration jobs; the kill must land while some are still to do
    config_path = make_dataset(tmp_path, count)
    run_dir = tmp_path / "out" / "refsmith"
    process = start_run(config_path, "--workers", "1")
    try:
        wait_for(lambda: calibration_done(run_dir) >= 1, 120, "the first job to finish",
                 process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        stop(process)
    with JobStore(run_dir / "store.sqlite", readonly=True) as store:
        killed = {r.id: r for r in store.jobs()}
    done_before = {i for i, r in killed.items() if r.state == "done"}
    assert 1 <= sum(r.kind == "calibration" for r in killed.values() if r.state == "done") < count
    workers = {int(r.worker.rsplit(":", 1)[1]) for r in killed.values() if r.worker}

    def gone() -> bool:  # the orphaned workers exit by themselves
        return all(not Path(f"/proc/{pid}").exists() for pid in workers)

    wait_for(gone, 30, "the killed run's workers to exit")

    summary = run(load_config(config_path), options=RunOptions(progress="none"))
    after = attempts(run_dir)
    for job_id in done_before:
        assert after[job_id] == 1  # not redone
    jobs = plan_jobs(run_dir)  # the resumed plan: only what was left
    assert jobs and all(outputs_valid(j) for j in jobs)
    assert summary.counts["running"] == 0 and summary.exit_code == 0
    # every exposure ends with its product, each in its exact target state (a job whose
    # worker finished writing just as the main process was killed is not redone: its
    # product is valid, so the resumed plan starts from it)
    resumed = products(tmp_path)
    rates = sorted(n for n in resumed if "_linearity_" in n)
    assert len(rates) == count
    reference = products(one_go["root"])  # exposures 0-3 are the same data there
    compared = [n for n in rates if n in reference]
    assert len(compared) == 4
    for name in compared:
        for extension in ("SCI", "PIXELDQ", "GROUPDQ"):
            np.testing.assert_array_equal(fits.getdata(resumed[name], extension),
                                          fits.getdata(reference[name], extension))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_ctrl_c_stops_cleanly_and_a_second_run_is_refused(tmp_path, signum):
    """Ctrl-C (or SIGTERM, as from a batch system) while a job certainly runs: a combine
    job whose plug-in (tests/fault_plugins.py) has begun writing its output and holds until
    released, which it never is. The run stops with 130, the held job back to pending, its
    worker gone, no temporary left (the killed worker's removed), no partial product."""
    config_path = make_dataset(tmp_path, 3)
    holding = tmp_path / "holding.txt"
    config_path.write_text(config_path.read_text() + (
        f'  held: {{imtypes: D+, reftype: superbias, plugin: "fault_plugins:Holds", '
        f'params: {{hold_in: combine, started: "{holding}"}}}}\n'))
    run_dir = tmp_path / "out" / "refsmith"
    tests = str(Path(__file__).parents[1])  # the fault plug-ins are there
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (tests, os.environ.get("PYTHONPATH", "")) if p))
    process = start_run(config_path, "--workers", "1", env=env)
    try:
        wait_for(holding.is_file, 180, "the held job to start", process)
        assert [p for p in (run_dir / "final" / "held").iterdir() if ".plugin." in p.name]
        with pytest.raises(RunLockedError, match=f"pid {process.pid} "):
            run(load_config(config_path), options=RunOptions(progress="none"))
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        stop(process)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    with JobStore(run_dir / "store.sqlite", readonly=True) as store:
        held = next(r for r in store.jobs() if r.id.startswith("combine-held-"))
        counts = store.counts()
    assert held.state == "pending" and "interrupted" in held.error, held
    assert counts["running"] == 0
    worker = int(holding.read_text().split()[1])
    assert not Path(f"/proc/{worker}").exists()
    assert not [p for p in (tmp_path / "out").rglob(".*") if p.is_file()]
    assert not [p for p in (tmp_path / "out" / "calibrated").rglob("*.fits")
                if not outputs_valid_path(p)]


def outputs_valid_path(path: Path) -> bool:
    """A product with a final name is complete (the pipeline renames only when done)."""
    with fits.open(path) as hdus:
        return "SCI" in hdus and os.path.getsize(path) > 0

"""A changed input is never silently reused (issue 13, items 1-3).

* after a finished run, a raw exposure rewritten under the same name: its products are set
  aside with the reason, it is calibrated again and every reference file made from it is
  made again, the other exposures' jobs are not; the same bytes copied back in place
  (new inode and ctime) are recognised by their content digest and nothing is redone;
* a raw exposure changed after the plan was made (during a run): the calibration job and
  the reference-file job that would use it fail with a clear message, not retried;
* the header cache sees a header edited in place with its size and mtime kept
  (tests/test_catalog.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from refsmith.cli.explain import explain
from refsmith.config import load_config
from refsmith.execute.store import JobStore
from refsmith.execute.worker import WorkerSettings, run_task
from refsmith.running import RunOptions, run
from refsmith.synthetic.ramps import write_raw_exposure
from refsmith.util.identity import changed, content_digest, file_identity
from run_dataset import SHAPE, exposure_name, make_dataset


def test_identity_sees_changes_and_recognises_the_same_bytes(tmp_path):
    path = tmp_path / "f.fits"
    path.write_bytes(b"a" * 5000)
    recorded = file_identity(path, digest=True)
    assert changed(path, recorded) == ""
    copy = tmp_path / "copy"
    shutil.copy2(path, copy)
    os.replace(copy, path)  # same bytes, new inode and ctime
    assert file_identity(path)["inode"] != recorded["inode"]
    assert changed(path, recorded) == ""  # the digest decides
    stat = path.stat()
    path.write_bytes(b"b" * 5000)  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # mtime put back
    assert "content differs" in changed(path, recorded)
    without_digest = {k: v for k, v in recorded.items() if k != "digest"}
    assert "has changed (" in changed(path, without_digest)
    assert content_digest(path) != recorded["digest"]
    path.unlink()
    assert "is gone" in changed(path, recorded)
    path.write_bytes(b"c")
    assert changed(path, {}) == ""  # nothing recorded: nothing to compare


def records(run_dir: Path) -> dict[str, str]:
    with JobStore(run_dir / "store.sqlite", readonly=True) as store:
        return {r.id: r.state for r in store.jobs(in_plan_only=True)}


def executions(run_dir: Path) -> dict[str, int]:
    with JobStore(run_dir / "store.sqlite", readonly=True) as store:
        counts: dict[str, int] = {}
        for attempt in store.attempts():
            counts[attempt["job"]] = counts.get(attempt["job"], 0) + 1
    return counts


@pytest.mark.slow
def test_a_raw_file_rewritten_after_a_run_is_calibrated_again(tmp_path, monkeypatch, capsys):
    config_path = make_dataset(tmp_path, 4)
    monkeypatch.chdir(tmp_path)
    config = load_config(config_path)
    options = RunOptions(progress="none", report=False)
    first = run(config, options=options)
    assert first.exit_code == 0
    before = executions(first.run_dir)

    # the same bytes copied back in place: new inode and ctime, same content
    raw = tmp_path / "raw" / exposure_name(1)
    shutil.copy(raw, tmp_path / "copy.fits")
    os.replace(tmp_path / "copy.fits", raw)
    again = run(config, options=options)
    assert again.exit_code == 0 and again.superseded == []
    assert executions(again.run_dir) == before  # nothing redone

    # rewritten with other data under the same name
    write_raw_exposure(raw, shape=SHAPE, mjd=60000.1, seed=99)
    third = run(config, options=options)
    assert third.exit_code == 0
    assert third.superseded and all(exposure_name(1)[:-11] in s["path"]
                                    for s in third.superseded)
    assert all("has changed" in s["reason"] for s in third.superseded), third.superseded
    after = executions(third.run_dir)
    redone = {job for job, n in after.items() if n > before.get(job, 0)}
    base = exposure_name(1)[:-11]
    assert redone and all(base in job or not job.startswith("cal-") for job in redone)
    # every reference file made from it is made again: the D+ dark and its final file,
    # and the read-noise pair it belongs to
    assert any(job.startswith("reffile-dark") for job in redone)
    assert any(job.startswith("combine-dark") for job in redone)
    assert set(records(third.run_dir).values()) <= {"done", "cached"}
    # explain and status say what was set aside and why
    text = explain(config, str(raw))
    assert "superseded" in text and "has changed" in text
    from refsmith.cli import main

    assert main(["status", str(third.run_dir)]) == 0
    assert "has changed" in capsys.readouterr().out
    # and the new products record the new raw file
    sidecars = list((tmp_path / "out" / "calibrated" / base).glob("*.provenance.json"))
    assert sidecars
    for sidecar in sidecars:
        inputs = json.loads(sidecar.read_text())["inputs"]
        assert inputs[str(raw)]["digest"] == content_digest(raw)


@pytest.mark.slow
def test_inputs_changed_after_the_plan_fail_the_jobs_that_would_use_them(tmp_path,
                                                                          monkeypatch):
    config_path = make_dataset(tmp_path, 2)
    monkeypatch.chdir(tmp_path)
    config = load_config(config_path)
    first = run(config, options=RunOptions(progress="none", report=False))
    assert first.exit_code == 0
    plan = json.loads((first.run_dir / "plan.json").read_text())
    raw = tmp_path / "raw" / exposure_name(0)
    settings = WorkerSettings(offline=True)  # this process: off-line CRDS of conftest.py
    calibration = next(j for j in plan["calibration_jobs"] if j["exposure"] == str(raw))
    reffile = next(j for j in plan["reffile_jobs"]
                   if any(i["exposure"] == str(raw) for i in j["inputs"]))

    # the EXP_TYPE of the raw exposure edited after the plan, mtime put back
    stat = raw.stat()
    data = raw.read_bytes()
    raw.write_bytes(data.replace(b"'NRC_DARK'", b"'NRC_FLAT'", 1))
    os.utime(raw, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    for kind, job in (("calibration", calibration), ("reffile", reffile)):
        task = {"id": job["id"], "kind": kind, "job": job, "settings": settings.to_dict(),
                "log_path": str(tmp_path / f"{kind}.log")}
        result = run_task(task)
        assert not result["ok"] and result.get("permanent"), result
        assert str(raw) in result["error"] and "since the plan was made" in result["error"]
        assert "run again" in result["error"]
        assert "since the plan was made" in Path(task["log_path"]).read_text()

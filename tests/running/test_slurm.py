"""refsmith on a real Slurm through dask-jobqueue's SLURMCluster (docs/running.md's example).

Needs a working Slurm on this machine (``../shared/tools/slurm_single_node.sh start``, as
``.ci/run`` does); skips, saying why, without one. The worker jobs run this test's Python.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

from refsmith.config import load_config
from refsmith.execute.store import JobStore
from refsmith.running import RunOptions, run
from run_dataset import make_dataset, start_run, stop, wait_for

RUNNING_MD = Path(__file__).parents[2] / "docs" / "running.md"
JOB_NAME = "dask-worker"  # dask-jobqueue's default job name

pytestmark = pytest.mark.slow


def slurm_problem() -> str:
    """Why Slurm cannot be used here ('' when it can)."""
    for command in ("sbatch", "squeue", "scancel", "scontrol"):
        if shutil.which(command) is None:
            return (f"no Slurm here ({command} not found): start one with "
                    "../shared/tools/slurm_single_node.sh start (root, apt)")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    if "UP" not in ping.stdout:
        return f"slurmctld does not answer: {ping.stdout.strip() or ping.stderr.strip()}"
    partitions = subprocess.run(["sinfo", "-h", "-o", "%P %a"], capture_output=True,
                                text=True, timeout=30).stdout
    if not re.search(r"^debug\*? up$", partitions, re.MULTILINE):
        return f"no partition 'debug' up (sinfo: {partitions.strip()!r})"
    return ""


@pytest.fixture(scope="module")
def slurm():
    pytest.importorskip("dask_jobqueue")
    problem = slurm_problem()
    if problem:
        pytest.skip(problem)


def documented_example() -> dict:
    """The ``execution`` section of running.md's worked Slurm example."""
    text = RUNNING_MD.read_text()
    block = text.split("<!-- slurm-example -->", 1)[1].split("```yaml", 1)[1].split("```")[0]
    return yaml.safe_load(block)["execution"]


TESTS = str(Path(__file__).parents[1])  # the fault plug-ins are there (conftest puts it
# on sys.path here); the worker jobs get the environment of `refsmith run` (sbatch's
# default --export=ALL)
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    p for p in (TESTS, os.environ.get("PYTHONPATH", "")) if p))


def with_held_recipe(config: Path) -> None:
    """A recipe whose reference-file job holds (tests/fault_plugins.py) until
    ``<root>/release`` exists, writing ``<root>/holding`` when it starts."""
    root = config.parent
    data = yaml.safe_load(config.read_text())
    data["recipes"]["held"] = {"imtypes": "D+", "reftype": "superbias",
                               "plugin": "fault_plugins:Holds",
                               "params": {"hold_in": "make", "started": str(root / "holding"),
                                          "release": str(root / "release"),
                                          "seconds": 300}}
    config.write_text(yaml.safe_dump(data))


def slurm_dataset(root: Path, count: int) -> Path:
    """The test data set with the documented execution section (this test's Python on the
    workers, their logs in ``root/slurm-logs``) and the held recipe."""
    config = make_dataset(root, count)
    with_held_recipe(config)
    data = yaml.safe_load(config.read_text())
    execution = documented_example()
    execution["cluster"] |= {"python": sys.executable,
                             "log_directory": str(root / "slurm-logs")}
    data["execution"] = {**data["execution"], **execution}
    config.write_text(yaml.safe_dump(data))
    return config


def worker_jobs() -> dict[str, str]:
    """Slurm job id -> state of the dask-worker jobs in the queue."""
    out = subprocess.run(["squeue", "-h", "-n", JOB_NAME, "-o", "%i %T"],
                         capture_output=True, text=True, timeout=30).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def finals(root: Path) -> dict[str, Path]:
    return {p.relative_to(root / "out").as_posix().split("/", 1)[1]: p
            for p in (root / "out").glob("*/final/*/*.fits")}


def test_a_run_on_slurm_replaces_a_cancelled_worker_job(slurm, tmp_path):
    """Two worker jobs; while a reference-file job holds, one is cancelled (scancel): a
    replacement job is submitted (then the hold is released), the run finishes with every
    job done, and the final files are those of a local run."""
    started = time.monotonic()
    root = tmp_path / "slurm"
    config = slurm_dataset(root, 4)
    process = start_run(config, env=ENV)
    seen: dict[str, str] = {}
    cancelled = ""
    try:
        def two_running() -> bool:
            seen.update(jobs := worker_jobs())
            return sum(state == "RUNNING" for state in jobs.values()) >= 2

        wait_for(two_running, 180, "two dask-worker jobs running", process)
        wait_for((root / "holding").is_file, 180, "the held job to start", process)
        cancelled = sorted(seen, key=int)[0]
        subprocess.run(["scancel", cancelled], check=True, timeout=30)
        first = set(seen)
        wait_for(lambda: set(worker_jobs()) - first, 120, "a replacement worker job",
                 process)
        (root / "release").touch()
        deadline = time.monotonic() + 600
        while process.poll() is None and time.monotonic() < deadline:
            seen.update(worker_jobs())
            time.sleep(0.5)
        _, stderr = process.communicate(timeout=60)
    finally:
        stop(process)
    elapsed = time.monotonic() - started
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    replaced = re.findall(r"batch job (\d+) \(\S+\) was lost: replaced by batch job (\d+)",
                          stderr)
    assert [lost for lost, _ in replaced] == [cancelled], stderr
    assert replaced[0][1] in set(seen) - first, (seen, stderr)
    assert not worker_jobs()  # the cluster's jobs are gone with the run
    run_dir = root / "out" / "refsmith"
    with JobStore(run_dir / "store.sqlite", readonly=True) as store:
        records = store.jobs()
    assert records and all(r.state == "done" for r in records), records
    assert all(r.worker.startswith("dask:") for r in records)
    local_config = make_dataset(tmp_path / "local", 4)
    with_held_recipe(local_config)
    (tmp_path / "local" / "release").touch()
    summary = run(load_config(local_config), options=RunOptions(progress="none"))
    assert summary.exit_code == 0
    on_slurm, local = finals(root), finals(tmp_path / "local")
    assert on_slurm and sorted(on_slurm) == sorted(local)
    for name, path in on_slurm.items():
        with fits.open(path) as a, fits.open(local[name]) as b:
            images = [h.name for h in a if h.is_image and h.data is not None]
            assert images and images == [h.name for h in b if h.is_image and
                                         h.data is not None], name
            for extension in images:
                np.testing.assert_array_equal(a[extension].data, b[extension].data,
                                              err_msg=f"{name}[{extension}]")
    print(f"slurm run with one worker job cancelled: {elapsed:.0f} s (with the local run); "
          f"worker jobs seen {sorted(seen, key=int)}, replaced {replaced}")


def test_ctrl_c_on_slurm_exits_130_and_leaves_no_job(slurm, tmp_path):
    """SIGINT to ``refsmith run`` while a job runs on a Slurm worker: exit 130,
    "interrupted", as in local mode; no job left running, no worker job left queued."""
    config = slurm_dataset(tmp_path, 4)
    run_dir = tmp_path / "out" / "refsmith"
    process = start_run(config, env=ENV)

    def a_job_runs() -> bool:
        path = run_dir / "store.sqlite"
        if not path.is_file():
            return False
        try:
            with JobStore(path, readonly=True) as store:
                return any(r.state == "running" for r in store.jobs())
        except Exception:
            return False

    try:
        wait_for(a_job_runs, 180, "a job running on a Slurm worker", process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        stop(process)
    assert process.returncode == 130, stderr
    assert stderr.rstrip().endswith("interrupted") and "Traceback" not in stderr, stderr
    with JobStore(run_dir / "store.sqlite", readonly=True) as store:
        assert store.counts()["running"] == 0
    wait_for(lambda: not worker_jobs(), 60, "the worker jobs to go")

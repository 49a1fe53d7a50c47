"""A small data set of real tiny exposures and a config, and helpers to run refsmith on it.

Five or so dark exposures (1 x 5 x 64 x 64, SUB64P) with synthetic reference files, the
config of two recipes, the plan's jobs, the calibrated products, and ``refsmith run`` as a
subprocess (started, waited on, stopped). Used by the end-to-end tests of ``tests/running``
and the Dask and fault tests.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from refsmith.execute.store import JobStore
from refsmith.jobs.records import CalibrationJob
from refsmith.synthetic.ramps import write_raw_exposure
from refsmith.synthetic.references import write_reference_files

SHAPE = (1, 5, 64, 64)
CONFIG = """\
instrument: nircam
inputs: {{paths: [raw]}}
output: {{root: out, run: auto}}
pipeline:
  offline: true
  references:
{references}
execution: {{workers: 2, retries: 1}}
recipes:
  dark: {{imtypes: D+, steps: linearity-, min_size: 2}}
  readnoise: {{imtypes: DD, steps: dq_init-}}
"""


def exposure_name(index: int) -> str:
    return f"jw0100{index:02d}001001_01101_00001_nrca1_uncal.fits"


def make_dataset(root: Path, count: int, *, corrupt: int | None = None) -> Path:
    """``count`` dark exposures (same seeds in every data set) and a config; returns it."""
    raw = root / "raw"
    raw.mkdir(parents=True)
    for index in range(count):
        path = write_raw_exposure(raw / exposure_name(index), shape=SHAPE,
                                  mjd=60000.0 + 0.1 * index, seed=index + 1)
        if index == corrupt:  # a valid primary header, an unreadable ASDF extension
            data = bytearray(path.read_bytes())
            start = data.find(b"#ASDF")
            data[start:start + 400] = b"\x00garbage" * 50
            path.write_bytes(bytes(data))
    references = write_reference_files(root / "refs", shape=SHAPE)
    lines = "\n".join(f"    {k}: {v}" for k, v in references.items())
    config = root / "refsmith.yaml"
    config.write_text(CONFIG.format(references=lines))
    return config


def plan_jobs(run_dir: Path) -> list[CalibrationJob]:
    data = json.loads((run_dir / "plan.json").read_text())
    return [CalibrationJob.from_dict(j) for j in data["calibration_jobs"]]


def products(root: Path) -> dict[str, Path]:
    return {p.name: p for p in (root / "out" / "calibrated").rglob("*.fits")}


def attempts(run_dir: Path) -> dict[str, int]:
    with JobStore(run_dir / "store.sqlite", readonly=True) as store:
        return {r.id: r.attempts for r in store.jobs()}


def calibration_done(run_dir: Path) -> int:
    """Calibration jobs done so far in the store of a running subprocess."""
    path = run_dir / "store.sqlite"
    if not path.is_file():
        return 0
    try:
        with JobStore(path, readonly=True) as store:
            return sum(r.kind == "calibration" and r.state == "done" for r in store.jobs())
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def wait_for(predicate, timeout: float, what: str, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"refsmith run ended ({process.returncode}) before {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_run(config: Path, *extra: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "refsmith.cli", "run", str(config), "--progress", "lines",
         *extra],
        cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=30)

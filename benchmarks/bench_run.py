"""Benchmark: the local executor vs one `strun calwebb_detector1` process per file.

16 small synthetic NIRCam exposures (1 x 10 x 64 x 64, SUB64P) taken from raw to
ramp_fit with synthetic reference files, off-line (no CRDS). Both sides run the same
calibration jobs of the same plan with the same reference overrides:

* refsmith: the DAG loop and the local executor (default workers = cores; worker start-up,
  i.e. importing jwst, included in the time);
* strun: what jwst_reffiles did, one `strun calwebb_detector1` process per file, serially.

Prints both wall times and the ratio (target: >= 4x). Usage:
``python benchmarks/bench_run.py [--exposures 16] [--workers N] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from refsmith.calibrate.offline import offline_environment
from refsmith.calibrate.products import check_offline_references
from refsmith.config import load_config
from refsmith.detector1.reftypes import STEP_REFTYPES
from refsmith.execute.dag import Node, execute_dag
from refsmith.execute.local import LocalExecutor, default_workers
from refsmith.execute.store import JobStore
from refsmith.execute.worker import WorkerSettings
from refsmith.plan import build_plan
from refsmith.synthetic.ramps import write_raw_exposure
from refsmith.synthetic.references import write_reference_files

SHAPE = (1, 10, 64, 64)


def make_dataset(root: Path, count: int) -> Path:
    raw = root / "raw"
    raw.mkdir(parents=True)
    for index in range(count):
        write_raw_exposure(raw / f"jw0200{index:02d}001001_01101_00001_nrca1_uncal.fits",
                           shape=SHAPE, mjd=60000.0 + 0.01 * index, seed=index + 1)
    references = write_reference_files(root / "refs", shape=SHAPE)
    lines = "\n".join(f"    {k}: {v}" for k, v in references.items())
    config = root / "refsmith.yaml"
    config.write_text(
        "instrument: nircam\ninputs: {paths: [raw]}\noutput: {root: out, run: bench}\n"
        f"pipeline:\n  offline: true\n  references:\n{lines}\n"
        "recipes:\n  dark: {imtypes: D+, steps: ramp_fit-}\n")
    return config


def strun_argv(job, output_dir: Path) -> list[str]:
    argv = [a for a in job.argv if not a.startswith(("--output_dir=", "--steps.")
                                                    ) or ".skip=" in a or "save_results" in a]
    argv = [*argv, f"--output_dir={output_dir}"]
    # the plan's argv skips only the instrument's steps; without CRDS rules the pipeline
    # would still ask CRDS for the MIRI-only steps' references (reset, rscd): skip them too
    argv += [f"--steps.{step}.skip=True" for step in STEP_REFTYPES
             if step not in job.steps_to_run and f"--steps.{step}.skip=True" not in argv]
    for step, references in job.overrides.items():
        argv += [f"--steps.{step}.override_{reftype}={path}"
                 for reftype, path in references.items()]
    argv[0] = str(Path(sys.executable).with_name("strun"))
    return argv


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=16)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--keep", help="work in this directory and keep it")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="refsmith-bench-run-")).resolve()
    try:
        config_path = make_dataset(root, args.exposures)
        config = load_config(config_path)
        plan = build_plan(config, use_cache=False)
        jobs = check_offline_references(list(plan.calibration.calibration_jobs))
        crds = root / "out" / "crds"
        print(f"{len(jobs)} calibration jobs (raw -> ramp_fit, {SHAPE}), "
              f"{args.workers} workers, {os.cpu_count()} cores")

        # refsmith: DAG loop + local executor, worker start-up included
        settings = WorkerSettings(offline=True, crds_path=str(crds))
        started = time.perf_counter()
        executor = LocalExecutor(args.workers, settings)
        executor.start()
        nodes = [Node(j.id, "calibration", j.to_dict(), (), str(root / "logs" / f"{j.id}.log"))
                 for j in jobs]
        with JobStore(root / "store.sqlite") as store:
            store.sync_plan((n.id, n.kind, (), n.log_path) for n in nodes)
            try:
                outcome = execute_dag(nodes, store, executor, settings.to_dict(), retries=0)
            finally:
                executor.shutdown()
        refsmith_seconds = time.perf_counter() - started
        failed = [i for i, s in outcome.states.items() if s != "done"]
        if failed:
            print(f"refsmith: {len(failed)} jobs failed, e.g. {outcome.errors[failed[0]]}")
            return 1

        # one strun process per file, serially (jwst_reffiles); the workers wrote the
        # off-line server_config in the CRDS directory
        env = dict(os.environ, **offline_environment(crds))
        started = time.perf_counter()
        for job in jobs:
            output_dir = root / "strun" / Path(job.exposure).name
            output_dir.mkdir(parents=True)
            subprocess.run(strun_argv(job, output_dir), env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        strun_seconds = time.perf_counter() - started

        print(f"refsmith local executor : {refsmith_seconds:7.1f} s")
        print(f"strun, one per file     : {strun_seconds:7.1f} s")
        print(f"ratio                   : {strun_seconds / refsmith_seconds:7.1f}x "
              "(target >= 4x)")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

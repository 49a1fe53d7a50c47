"""Benchmark: the five built-ins on real-sized data (NIRCam full frame), off-line.

Makes a NIRCam NRCA1 FULL set (default 8 darks + 4 flats, 20 groups, 2048 x 2048, one
integration; synthetic full-frame reference files), runs ``refsmith run`` on it with the
demo's recipes (readnoise DD, superbias D+, dark D+, gain DDFF, bad_pixel_mask DF+), and
prints, per job, the wall time, the worker's peak resident memory (RSS) and the job's
memory estimate; per stage (calibration, reference files, combine) the totals. Then the
targets, as ratios so that they hold on any machine:

(a) every reference-file and combine job's peak RSS <= its budget + 300 MB;
(b) the reference-file stage's job seconds (reffile + combine) <= 10 % of the
    calibration stage's;
(c) no job failed or was killed, and every final file was made.

Usage::

    python benchmarks/bench_fullframe.py [--darks 8] [--flats 4] [--groups 20]
        [--size 2048] [--workers 2] [--budget 2GiB] [--keep DIR] [--redo reffiles]

``--keep DIR`` keeps (and reuses) the data and the run; with ``--redo reffiles`` a second
call re-runs only the reference-file and combine jobs on the calibrated products.
``--floor`` then also times what no implementation of the stage can avoid: reading every
input file of every reference-file job once (whole files, into one reused buffer) and
writing every output file once, with no arithmetic, as a share of the calibration stage.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from refsmith.config import load_config
from refsmith.execute.store import JobStore
from refsmith.running import RunOptions, run
from refsmith.synthetic.ramps import write_raw_exposure
from refsmith.synthetic.references import write_reference_files
from refsmith.util.memory import parse_memory

RECIPES = """\
recipes:
  readnoise:   {imtypes: DD,   steps: dq_init-}
  superbias:   {imtypes: D+,   steps: dq_init-}
  dark:        {imtypes: D+,   steps: linearity-}
  gain:        {imtypes: DDFF, steps: linearity-}
  bad_pixel_mask: {reftype: mask, imtypes: DF+, steps: linearity-}
"""
TOLERANCE = 300 * 2**20  # target (a): peak RSS <= budget + 300 MB


def make_dataset(root: Path, darks: int, flats: int, groups: int, size: int,
                 workers: int, budget: str) -> Path:
    """Raw exposures, reference files and the config (kept when already there)."""
    config = root / "refsmith.yaml"
    if config.is_file():
        return config
    shape = (1, groups, size, size)
    subarray = "FULL" if size == 2048 else "SUB640"
    raw = root / "raw"
    started = time.perf_counter()
    for index in range(darks + flats):
        dark = index < darks
        name = f"jw0300{index:04d}001_01101_00001_nrca1_uncal.fits"
        write_raw_exposure(raw / name, shape=shape, subarray=subarray,
                           exp_type="NRC_DARK" if dark else "NRC_FLAT",
                           flux=0.0 if dark else 100.0, read_noise=6.0, gain=2.0,
                           dark_rate=0.05, mjd=60000.0 + 0.01 * index, detector_seed=3,
                           seed=index + 1)
    references = write_reference_files(root / "refs", shape=shape, subarray=subarray,
                                       detector_seed=3, read_noise=6.0, gain=2.0)
    print(f"data: {darks} darks + {flats} flats of {shape} in "
          f"{time.perf_counter() - started:.0f} s")
    lines = "\n".join(f"    {k}: {v}" for k, v in references.items())
    config.write_text(
        "instrument: nircam\ninputs: {paths: [raw]}\n"
        "group_by: [DETECTOR, SUBARRAY, READPATT]\n"
        "max_days: {DD: 2.0, FF: 2.0, DDFF: 10.0}\n"
        "output: {root: out, run: bench}\n"
        f"pipeline:\n  offline: true\n  references:\n{lines}\n"
        f"execution: {{workers: {workers}, retries: 0, reffile_memory: {budget}}}\n"
        + RECIPES)
    return config


def report(run_dir: Path, budget: int, floor: bool = False) -> int:
    """Print the per-job and per-stage figures and the targets (with ``floor``, the I/O
    floor too, see :func:`io_floor`); 0 when all are met."""
    with JobStore(run_dir / "store.sqlite", readonly=True) as store:
        jobs = {r.id: r for r in store.jobs(in_plan_only=True)}
        peaks: dict[str, int | None] = {}
        for attempt in store.attempts():
            peaks[attempt["job"]] = attempt.get("peak_rss")
    print(f"\n{'job':58} {'kind':11} {'state':7} {'seconds':>8} {'peak RSS':>9}")
    totals: dict[str, float] = {}
    over, failed = [], []
    for job in sorted(jobs.values(), key=lambda r: (r.kind != "calibration", r.id)):
        peak = peaks.get(job.id)
        seconds = job.seconds or 0.0
        totals[job.kind] = totals.get(job.kind, 0.0) + seconds
        shown = f"{peak / 2**20:7.0f}MB" if peak else "       ?"
        print(f"{job.id[:58]:58} {job.kind:11} {job.state:7} {seconds:8.1f} {shown:>9}")
        if job.state not in ("done", "cached"):
            failed.append(job.id)
        if job.kind != "calibration" and peak and peak > budget + TOLERANCE:
            over.append(job.id)
    calibration = totals.get("calibration", 0.0)
    reference = totals.get("reffile", 0.0) + totals.get("combine", 0.0)
    print("\nstage totals (job seconds): " +
          ", ".join(f"{k} {v:.1f}" for k, v in sorted(totals.items())))
    plugin_peaks = [peaks[j] for j, r in jobs.items() if r.kind != "calibration" and peaks.get(j)]
    finals = sorted((run_dir / "final").rglob("*.fits"))
    ratio = reference / calibration if calibration else float("nan")
    print(f"(a) plug-in peak RSS: max {max(plugin_peaks, default=0) / 2**20:.0f} MB, budget "
          f"{budget / 2**20:.0f} MB + 300: {'met' if not over else 'NOT met: ' + str(over)}")
    print(f"(b) reference-file stage / calibration stage = {reference:.1f} / "
          f"{calibration:.1f} s = {100 * ratio:.1f} % (target <= 10 %): "
          f"{'met' if ratio <= 0.10 else 'not met'}")
    print(f"(c) failed or blocked jobs: {len(failed)}; final files: {len(finals)} "
          f"({', '.join(p.parent.name for p in finals)})")
    if floor:
        reading, writing, size = io_floor(run_dir)
        share = 100 * (reading + writing) / calibration if calibration else float("nan")
        print(f"(floor) reading the inputs ({size:.1f} GiB) {reading:.1f} s + writing the "
              f"outputs {writing:.1f} s = {share:.1f} % of the calibration stage, with no "
              f"arithmetic")
    return 0 if not over and not failed and len(finals) == 5 and ratio <= 0.10 else 1


def io_floor(run_dir: Path) -> tuple[float, float, float]:
    """Seconds to read every input of every reference-file job once and to write every
    output (reference-file and final) once; GiB read."""
    plan = json.loads((run_dir / "plan.json").read_text())
    buffer = memoryview(bytearray(64 * 2**20))
    started, size = time.perf_counter(), 0
    for job in plan["reffile_jobs"]:
        for item in job["inputs"]:
            with open(item["path"], "rb", buffering=0) as handle:
                while chunk := handle.readinto(buffer):
                    size += chunk
    reading = time.perf_counter() - started
    started = time.perf_counter()
    scratch = run_dir / ".floor.tmp"
    for job in plan["reffile_jobs"] + plan["combine_jobs"]:
        left = Path(job["output"]).stat().st_size
        with open(scratch, "wb", buffering=0) as handle:
            while left > 0:
                left -= handle.write(buffer[:min(left, len(buffer))])
        scratch.unlink()
    return reading, time.perf_counter() - started, size / 2**30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--darks", type=int, default=8)
    parser.add_argument("--flats", type=int, default=4)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--size", type=int, default=2048, help="rows = columns")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budget", default="2GiB", help="execution.reffile_memory")
    parser.add_argument("--keep", help="work in this directory and keep it")
    parser.add_argument("--redo", choices=["reffiles", "all"],
                        help="redo these jobs of a kept run")
    parser.add_argument("--floor", action="store_true",
                        help="also time reading the inputs and writing the outputs alone")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="refsmith-bench-ff-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    try:
        config_path = make_dataset(root, args.darks, args.flats, args.groups, args.size,
                                   args.workers, args.budget)
        config = load_config(config_path)
        started = time.perf_counter()
        summary = run(config, options=RunOptions(progress="lines", report=False,
                                                 force_redo=args.redo))
        print(f"refsmith run: {time.perf_counter() - started:.0f} s wall, "
              f"{summary.executed} executions, exit code {summary.exit_code}")
        for failure in summary.failures:
            print(f"  failed {failure['id']}: {failure['error'][:300]}")
        return report(summary.run_dir, parse_memory(args.budget) or 0, args.floor)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())

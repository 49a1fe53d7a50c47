"""``refsmith plan`` speed, end to end: catalog + grouping + planning + run directory.

Writes N header-only NIRCam exposures (10 detectors, half darks and half flats, in visits
of a few exposures spread over ~6 months) and a config with five recipes, then times:

- in-process :func:`refsmith.plan.build_plan` + :func:`refsmith.plan_files.write_run_dir`,
  split by stage: scan (discovery + header reading / cache), grouping (every
  recipe's ``build_groups``), planning (start files and jobs) and writing (plan.json and
  the three ECSV tables);
- ``refsmith plan CONFIG`` as a subprocess (Python start-up and imports included).
  refsmith's modules are byte-compiled first, as in an installed wheel: an editable
  install under ``PYTHONDONTWRITEBYTECODE=1`` (as on our machines) would otherwise
  compile them from source at every start (~0.07 s).

Each is measured cold (no header cache, no run directory yet) and warm (cache present,
nothing changed), repeats interleaved so that a noisy neighbour hits every figure alike.
Figures are medians of ``--repeats`` runs. The files stay in the OS page cache.

Usage: ``python benchmarks/bench_plan.py [--n 10000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import refsmith.plan
import refsmith.plan_files
from refsmith.config import load_config
from refsmith.synthetic.headers import write_exposure

DETECTORS = ("NRCA1", "NRCA2", "NRCA3", "NRCA4", "NRCALONG",
             "NRCB1", "NRCB2", "NRCB3", "NRCB4", "NRCBLONG")
EXP_TYPES = {"dark": "NRC_DARK", "flat": "NRC_FLAT"}
START_MJD = 60310.0
SPAN_DAYS = 180.0

CONFIG = """\
instrument: nircam
inputs:
  paths: [raw]
  pattern: '_uncal\\.fits$'
group_by: [DETECTOR, SUBARRAY, READPATT]
max_days: {DD: 2.0, FF: 2.0, DDFF: 10.0, D+: 3.0, DF+: 10.0}
output: {root: out, run: auto}
recipes:
  readnoise:      {imtypes: DD,   steps: dq_init-}
  superbias:      {imtypes: D+,   steps: dq_init-, min_size: 2}
  dark:           {imtypes: D+,   steps: superbias-, min_size: 2}
  gain:           {imtypes: DDFF, steps: superbias-}
  bad_pixel_mask: {reftype: mask, imtypes: DF+, steps: dq_init-}
"""


def schedule(count: int, seed: int = 1) -> list[tuple[str, str, float]]:
    """``(detector, imtype, mjd)`` of ``count`` exposures.

    Per detector and image type: visits of 1-8 exposures (~20 min apart), at random
    times over SPAN_DAYS, so that some exposures are far from any partner.
    """
    rng = random.Random(seed)
    per_stream = count // (2 * len(DETECTORS))
    extra = count - per_stream * 2 * len(DETECTORS)
    rows = []
    for s, (detector, imtype) in enumerate((d, t) for d in DETECTORS for t in EXP_TYPES):
        todo = per_stream + (1 if s < extra else 0)
        while todo:
            size = min(todo, rng.randint(1, 8))
            start = START_MJD + rng.uniform(0, SPAN_DAYS)
            rows += [(detector, imtype, start + i * 0.014) for i in range(size)]
            todo -= size
    return rows


def write_dataset(directory: Path, count: int) -> Path:
    """The raw files and ``refsmith.yaml`` in ``directory``; returns the config path."""
    raw = directory / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for i, (detector, imtype, mjd) in enumerate(schedule(count)):
        name = f"jw01234{i // 1000:03d}{i % 1000:03d}_01101_00001_{detector.lower()}_uncal.fits"
        write_exposure(raw / name, instrument="NIRCAM", detector=detector,
                       exp_type=EXP_TYPES[imtype], readpatt="RAPID", subarray="SUB64P",
                       ngroups=5 + i % 3, mjd=mjd)
    config = directory / "refsmith.yaml"
    config.write_text(CONFIG)
    return config


def make_cold(directory: Path) -> None:
    """Remove the output root: no header cache, no run directory."""
    shutil.rmtree(directory / "out", ignore_errors=True)


class StageTimer:
    """Wraps ``scan`` and ``group_recipes`` (as looked up by build_plan) to time them."""

    def __init__(self) -> None:
        self.seconds = {"scan": 0.0, "grouping": 0.0}

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
        return timed


def time_in_process(config_path: Path) -> dict[str, float]:
    """Seconds per stage of one build_plan + write_run_dir."""
    timer = StageTimer()
    original_scan, original_groups = refsmith.plan.scan, refsmith.plan.group_recipes
    refsmith.plan.scan = timer.wrap("scan", original_scan)
    refsmith.plan.group_recipes = timer.wrap("grouping", original_groups)
    try:
        start = time.perf_counter()
        config = load_config(config_path)
        plan = refsmith.plan.build_plan(config)
        built = time.perf_counter()
        refsmith.plan_files.write_run_dir(plan)
        done = time.perf_counter()
    finally:
        refsmith.plan.scan, refsmith.plan.group_recipes = original_scan, original_groups
    seconds = dict(timer.seconds)
    seconds["planning"] = built - start - seconds["scan"] - seconds["grouping"]
    seconds["writing"] = done - built
    seconds["total"] = done - start
    return seconds


def time_subprocess(config_path: Path) -> float:
    """Wall seconds of ``refsmith plan CONFIG`` (console script next to this Python)."""
    script = Path(sys.executable).with_name("refsmith")
    command = [str(script), "plan", str(config_path)] if script.exists() else [
        sys.executable, "-m", "refsmith.cli", "plan", str(config_path)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=config_path.parent)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of files (10000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="keep the data set here, and reuse it if it is there already")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="refsmith_bench_plan_") as tmp:
        directory = args.dir.resolve() if args.dir else Path(tmp)
        config = directory / "refsmith.yaml"
        raw = directory / "raw"
        if not (config.is_file() and raw.is_dir() and len(os.listdir(raw)) == args.n):
            shutil.rmtree(raw, ignore_errors=True)
            start = time.perf_counter()
            config = write_dataset(directory, args.n)
            print(f"wrote {args.n} header-only files in {time.perf_counter() - start:.1f} s")
            os.sync()  # do not time the write-back of the files just written
        compileall.compile_dir(Path(refsmith.plan.__file__).parent, quiet=1)
        time_in_process(config)  # imports, page cache
        runs: dict[str, list[Any]] = {"cold": [], "warm": [], "cli cold": [], "cli warm": []}
        for _ in range(args.repeats):
            make_cold(directory)
            runs["cold"].append(time_in_process(config))
            runs["warm"].append(time_in_process(config))
            make_cold(directory)
            runs["cli cold"].append(time_subprocess(config))
            runs["cli warm"].append(time_subprocess(config))
    stages = ("scan", "grouping", "planning", "writing", "total")
    median = {state: {s: statistics.median(r[s] for r in runs[state]) for s in stages}
              for state in ("cold", "warm")}
    print(f"\nrefsmith plan, {args.n} files, median of {args.repeats} (seconds)")
    print(f"{'stage':22s} {'cold':>7s} {'warm':>7s}")
    for s in stages:
        print(f"{'in-process ' + s:22s} {median['cold'][s]:7.3f} {median['warm'][s]:7.3f}")
    cli = {state: statistics.median(runs[f"cli {state}"]) for state in ("cold", "warm")}
    print(f"{'refsmith plan (CLI)':22s} {cli['cold']:7.3f} {cli['warm']:7.3f}")
    print(f"start-up + printing    {cli['cold'] - median['cold']['total']:7.3f} "
          f"{cli['warm'] - median['warm']['total']:7.3f}")
    print(f"targets: cold < 3 s ({cli['cold'] / 3:.2f} of it), "
          f"warm < 1 s ({cli['warm'] / 1:.2f} of it)")


if __name__ == "__main__":
    main()

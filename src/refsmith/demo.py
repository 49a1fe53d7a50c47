"""``refsmith demo``: a small synthetic NIRCam data set, a config, and every stage that exists.

The data set: two detectors, darks and flats spread over several weeks with gaps (so that
some exposures cannot be paired), one partly processed exposure, one corrupt file.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

DETECTORS = ("NRCA1", "NRCB1")
# (day offset, image type) per detector: pairs of darks and flats a day or so apart, a
# lonely dark and a lonely flat far from everything.
SCHEDULE = (
    (0.0, "dark"), (0.6, "dark"), (1.0, "flat"), (1.3, "flat"),
    (7.0, "dark"), (7.4, "dark"), (8.0, "flat"), (8.2, "flat"),
    (15.0, "dark"),
    (21.0, "dark"), (21.5, "dark"), (22.0, "flat"), (22.3, "flat"),
    (40.0, "flat"),
)
START_MJD = 60310.0
EXP_TYPES = {"dark": "NRC_DARK", "flat": "NRC_FLAT"}

DEMO_CONFIG = """\
# refsmith demo config (written by `refsmith demo`)
instrument: nircam
inputs:
  paths: [raw]
  pattern: '_uncal\\.fits$'
group_by: [DETECTOR, SUBARRAY, READPATT]
max_days: {DD: 2.0, FF: 2.0, DDFF: 10.0}
output: {root: out, run: auto}
recipes:
  readnoise:   {imtypes: DD,   steps: dq_init-}
  superbias:   {imtypes: D+,   steps: dq_init-, min_size: 2}
  dark:        {imtypes: D+,   steps: linearity-, min_size: 2}
  gain:        {imtypes: DDFF, steps: linearity-}
  bad_pixel_mask: {reftype: mask, imtypes: DF+, steps: linearity-}
"""


def write_dataset(directory: Path) -> list[Path]:
    """Write the demo's raw exposures into ``directory/raw``; return their paths."""
    from refsmith.synth import write_bad_file, write_exposure

    raw = directory / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    paths = []
    for d, detector in enumerate(DETECTORS):
        for i, (day, imtype) in enumerate(SCHEDULE):
            name = f"jw01234{d + 1:03d}{i + 1:03d}_01101_00001_{detector.lower()}_uncal.fits"
            steps = ({"group_scale": "SKIPPED", "dq_init": "COMPLETE"}
                     if (d, i) == (0, 4) else None)
            paths.append(write_exposure(
                raw / name, instrument="NIRCAM", detector=detector, exp_type=EXP_TYPES[imtype],
                readpatt="RAPID", subarray="SUB64P", ngroups=5, nints=1,
                mjd=START_MJD + day + 0.01 * d, steps=steps, data=True,
            ))
    corrupt = raw / "jw01234999001_01101_00001_nrca1_uncal.fits"
    write_bad_file(corrupt, "truncated")
    paths.append(corrupt)
    return paths


def run_demo(directory: Path, console: Console) -> int:
    """Write the demo data set and config (once), then run scan and plan on it."""
    from refsmith.config import load_config
    from refsmith.plan import build_plan, summary_rows, write_run_dir

    started = time.perf_counter()
    directory = directory.resolve()
    config_path = directory / "refsmith.yaml"
    if config_path.is_file() and (directory / "raw").is_dir():
        console.print(f"reusing the demo data set in {directory}")
    else:
        files = write_dataset(directory)
        config_path.write_text(DEMO_CONFIG)
        console.print(f"wrote {len(files)} synthetic NIRCam exposures (2 detectors, 6 weeks, "
                      f"one partly processed, one corrupt) to {directory / 'raw'}")
        console.print(f"wrote the config {config_path}")
    config = load_config(config_path)
    plan = build_plan(config)
    paths = write_run_dir(plan)
    console.print(f"[bold]scan[/]: {plan.catalog.summary_line()}")
    for exposure in plan.catalog.exposures:
        if not exposure.usable:
            console.print(f"  unusable: {exposure.name}: {exposure.reason}", markup=False)
    console.print("[bold]group[/]:")
    for row in summary_rows(plan):
        console.print(f"  {row['recipe']:15s} {row['partition']:22s} {row['groups']} groups, "
                      f"{row['left_out']} left out", markup=False)
    calibration = plan.calibration
    console.print(f"[bold]plan[/]: {len(calibration.calibration_jobs)} calibration jobs, "
                  f"{len(calibration.reffile_jobs)} reference-file jobs, "
                  f"{len(calibration.combine_jobs)} combine jobs -> {paths['plan.json']}")
    console.print("not run yet: executing the plan with the JWST pipeline, building the "
                  "reference files and the report are not implemented in this version.")
    console.print(f"explain any file: refsmith explain {config_path} <file>", markup=False)
    console.print(f"done in {time.perf_counter() - started:.1f} s")
    return 0

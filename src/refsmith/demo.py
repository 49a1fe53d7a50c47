"""``refsmith demo``: a small synthetic NIRCam data set, a config, and the whole chain.

The data set: two detectors, darks and flats spread over several weeks with gaps (so that
some exposures cannot be paired), one exposure already partly processed by the pipeline
(a real ``dq_init`` product in a search directory), one corrupt file, and synthetic
reference files for the off-line pipeline. Then scan, plan, run (calibration with the
real JWST pipeline, individual and final reference files) and the report, all off-line.
A second run on the same directory reuses everything.
"""

from __future__ import annotations

import os
import sys
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
PARTLY_PROCESSED = (0, 4)  # (detector index, schedule index): processed to dq_init
START_MJD = 60310.0
SHAPE = (2, 6, 64, 64)  # nints, ngroups, ny, nx: SUB64P
EXP_TYPES = {"dark": "NRC_DARK", "flat": "NRC_FLAT"}
FLAT_FLUX = 2000.0  # DN/s
DARK_RATE = 2.0  # DN/s

DEMO_CONFIG = """\
# refsmith demo config (written by `refsmith demo`)
instrument: nircam
inputs:
  paths: [raw]
  pattern: '_uncal\\.fits$'
group_by: [DETECTOR, SUBARRAY, READPATT]
max_days: {DD: 2.0, FF: 2.0, DDFF: 10.0}
output: {root: out, run: auto}
pipeline:
  offline: true                  # no CRDS server: every reference file is given below
  search_dirs: [products]        # earlier pipeline products of the inputs
  references:                    # globs, matched on DETECTOR and SUBARRAY
%(references)s
execution: {workers: 2, retries: 1}
recipes:
  readnoise:   {imtypes: DD,   steps: dq_init-}
  superbias:   {imtypes: D+,   steps: dq_init-, min_size: 2}
  dark:        {imtypes: D+,   steps: linearity-, min_size: 2}
  gain:        {imtypes: DDFF, steps: linearity-}
  bad_pixel_mask: {reftype: mask, imtypes: DF+, steps: linearity-}
"""


def exposure_name(detector_index: int, index: int, detector: str) -> str:
    """The demo's raw file name of one exposure."""
    return f"jw01234{detector_index + 1:03d}{index + 1:03d}_01101_00001_{detector.lower()}" \
        "_uncal.fits"


def write_dataset(directory: Path) -> list[Path]:
    """Write raw exposures, reference files and the config into ``directory``.

    Returns the raw files written (the corrupt one included).
    """
    from refsmith.synth import write_bad_file
    from refsmith.synthpipe import REFERENCE_TYPES, write_raw_exposure, write_reference_files

    raw = directory / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    paths = []
    for d, detector in enumerate(DETECTORS):
        write_reference_files(directory / "refs" / detector.lower(), detector=detector,
                              shape=SHAPE, dark_rate=DARK_RATE, detector_seed=d + 1)
        for i, (day, imtype) in enumerate(SCHEDULE):
            paths.append(write_raw_exposure(
                raw / exposure_name(d, i, detector), detector=detector,
                exp_type=EXP_TYPES[imtype], shape=SHAPE, mjd=START_MJD + day + 0.01 * d,
                dark_rate=DARK_RATE, flux=FLAT_FLUX if imtype == "flat" else 0.0,
                detector_seed=d + 1, seed=100 * d + i + 1,
            ))
    corrupt = raw / "jw01234999001_01101_00001_nrca1_uncal.fits"
    write_bad_file(corrupt, "truncated")
    paths.append(corrupt)
    references = "\n".join(f"    {reftype}: refs/*/synth_*_{reftype}.fits"
                           for reftype in REFERENCE_TYPES)
    (directory / "refsmith.yaml").write_text(DEMO_CONFIG % {"references": references})
    return paths


def process_one_exposure(directory: Path) -> Path:
    """Run the real pipeline to dq_init on one raw exposure; the product goes into
    ``products/``, where the config's ``search_dirs`` let the planner start from it."""
    from refsmith.pipeline import run_calibration
    from refsmith.synthpipe import reference_overrides

    d, i = PARTLY_PROCESSED
    detector = DETECTORS[d]
    raw = directory / "raw" / exposure_name(d, i, detector)
    base = raw.name.removesuffix("_uncal.fits")
    product = directory / "products" / f"{base}_dq_init.fits"
    refs = {reftype: directory / "refs" / detector.lower() /
            f"synth_{detector.lower()}_sub64p_{reftype}.fits" for reftype in ("mask",)}
    result = run_calibration(
        str(raw), ("group_scale", "dq_init"), [(("group_scale", "dq_init"), str(product))],
        reference_overrides(refs, steps=("dq_init",)),
        str(directory / "products" / f"{base}_dq_init.log"), instrument="NIRCAM")
    if not result.ok:
        from refsmith.errors import RefsmithError

        raise RefsmithError(f"demo set-up: processing {raw.name} failed: {result.error}")
    return product


def run_demo(directory: Path, console: Console) -> int:
    """Write the demo data set (once), then run the whole chain on it, off-line."""
    from refsmith.config import load_config
    from refsmith.run import RunOptions, run

    started = time.perf_counter()
    directory = directory.resolve()
    config_path = directory / "refsmith.yaml"
    if not os.environ.get("CRDS_PATH"):  # before anything imports crds (a test session
        from refsmith.offline import configure_offline  # has configured it already)

        configure_offline(directory / "out" / "crds")
    if config_path.is_file() and (directory / "products").is_dir():
        console.print(f"reusing the demo data set in {directory}")
    else:
        files = write_dataset(directory)
        console.print(f"wrote {len(files)} synthetic NIRCam exposures (2 detectors, 6 weeks, "
                      f"one corrupt) to {directory / 'raw'}, reference files to "
                      f"{directory / 'refs'}, the config {config_path}")
        product = process_one_exposure(directory)
        console.print(f"processed one exposure to dq_init with the pipeline: {product}")
    config = load_config(config_path)
    summary = run(config, options=RunOptions(progress="auto"), stream=sys.stderr)
    plan = _read_plan(summary.run_dir)
    exposures = plan["exposures"]
    usable = sum(e["usable"] for e in exposures)
    console.print(f"[bold]scan[/]: {len(exposures)} files, {usable} usable, "
                  f"{len(exposures) - usable} unusable")
    for exposure in exposures:
        if not exposure["usable"]:
            console.print(f"  unusable: {Path(exposure['path']).name}: {exposure['reason']}",
                          markup=False)
    console.print(f"[bold]groups[/]: {len(plan['groups'])} groups, "
                  f"{len(plan['leftovers'])} candidates left out (each with its reason)")
    counts = ", ".join(f"{n} {state}" for state, n in summary.counts.items() if n)
    console.print(f"[bold]run[/]: {counts or 'no jobs'}; {summary.executed} executed now")
    finals = sorted((summary.run_dir / "final").rglob("*.fits"))
    console.print(f"[bold]final reference files[/] ({len(finals)}):")
    for path in finals:
        console.print(f"  {path}", markup=False)
    for failure in summary.failures:
        console.print(f"[red]failed[/] {failure['id']}: {failure['error']}", markup=False)
    if summary.report:
        console.print(f"report: {summary.report}", markup=False)
    example = exposure_name(*PARTLY_PROCESSED, DETECTORS[PARTLY_PROCESSED[0]])
    console.print(f"explain a file: refsmith explain {config_path} {example}", markup=False)
    console.print(f"done in {time.perf_counter() - started:.1f} s")
    return summary.exit_code


def _read_plan(run_dir: Path) -> dict:
    import json

    return json.loads((run_dir / "plan.json").read_text())

"""``refsmith demo``: a small synthetic NIRCam data set, a config, and the whole chain.

The data set: two detectors with known (injected) bias, read noise, gain, dark current and
hot/dead/low-QE/noisy pixels; darks and flats spread over several weeks with gaps (so that
some exposures cannot be paired), one exposure already partly processed by the pipeline
(a real ``dq_init`` product in a search directory), one corrupt file, and synthetic
reference files for the off-line pipeline. Then scan, plan, run (calibration with the
real JWST pipeline, individual and final reference files) and the report, all off-line,
and the final files are compared with the injected truth. A second run on the same
directory reuses everything.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
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
SHAPE = (4, 10, 64, 64)  # nints, ngroups, ny, nx: SUB64P (4 reference rows and columns)
EXP_TYPES = {"dark": "NRC_DARK", "flat": "NRC_FLAT"}
FLAT_FLUX = 5000.0  # DN/s
DARK_RATE = 4.0  # DN/s
# injected read noise (DN) and gain (e-/DN) of the left and right half of each detector
READ_NOISE = {"NRCA1": (2.5, 3.5), "NRCB1": (3.0, 4.0)}
GAIN = {"NRCA1": (2.0, 2.5), "NRCB1": (1.8, 2.2)}
BAD_PIXEL_FLAGS = ("HOT", "DEAD", "LOW_QE", "UNRELIABLE_SLOPE")
MARKER = "# refsmith demo config (written by `refsmith demo`, data set 2)"

DEMO_CONFIG = MARKER + """
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
recipes:                         # validate: run the pipeline step using each file
  readnoise:   {imtypes: DD,   steps: dq_init-, params: {validate: pipeline}}
  superbias:   {imtypes: D+,   steps: dq_init-, min_size: 2, params: {validate: pipeline}}
  dark:        {imtypes: D+,   steps: linearity-, min_size: 2, params: {validate: pipeline}}
  gain:        {imtypes: DDFF, steps: linearity-, params: {validate: pipeline}}
  bad_pixel_mask: {reftype: mask, imtypes: DF+, steps: linearity-,
                   params: {validate: pipeline}}
report:                          # compare each final file with the synthetic reference files
                                 # (made for calibration, not the injected truth)
  baselines: {readnoise: 'refs/*/*_readnoise.fits', superbias: 'refs/*/*_superbias.fits',
              dark: 'refs/*/*_dark.fits', gain: 'refs/*/*_gain.fits',
              mask: 'refs/*/*_mask.fits'}
"""


def exposure_name(detector_index: int, index: int, detector: str) -> str:
    """The demo's raw file name of one exposure."""
    return f"jw01234{detector_index + 1:03d}{index + 1:03d}_01101_00001_{detector.lower()}" \
        "_uncal.fits"


def truth(detector: str) -> dict[str, Any]:
    """The injected properties of one demo detector.

    Returns
    -------
    dict
        ``read_noise`` and ``gain`` (``(ny, nx)`` maps), ``dark_rate`` (DN/s),
        ``defects`` (:class:`refsmith.synthetic.ramps.InjectedDefects`) and ``detector_seed``
        (the seed of its bias pattern).
    """
    from refsmith.synthetic.ramps import inject_defects

    ny, nx = SHAPE[2:]
    left = np.arange(nx)[None, :] < nx // 2
    seed = DETECTORS.index(detector) + 1
    return {"read_noise": np.where(left, *READ_NOISE[detector]) * np.ones((ny, nx)),
            "gain": np.where(left, *GAIN[detector]) * np.ones((ny, nx)),
            "dark_rate": DARK_RATE, "defects": inject_defects((ny, nx), seed=seed),
            "detector_seed": seed}


def write_dataset(directory: Path) -> list[Path]:
    """Write raw exposures, reference files and the config into ``directory``.

    Returns the raw files written (the corrupt one included).
    """
    from refsmith.synthetic.headers import write_bad_file
    from refsmith.synthetic.ramps import write_raw_exposure
    from refsmith.synthetic.references import REFERENCE_TYPES, write_reference_files

    raw = directory / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    paths = []
    for d, detector in enumerate(DETECTORS):
        injected = truth(detector)
        # the data carry no IPC, so the pipeline's IPC kernel is the identity
        write_reference_files(directory / "refs" / detector.lower(), detector=detector,
                              shape=SHAPE, dark_rate=DARK_RATE, ipc_alpha=0.0,
                              detector_seed=injected["detector_seed"])
        for i, (day, imtype) in enumerate(SCHEDULE):
            paths.append(write_raw_exposure(
                raw / exposure_name(d, i, detector), detector=detector,
                exp_type=EXP_TYPES[imtype], shape=SHAPE, mjd=START_MJD + day + 0.01 * d,
                dark_rate=DARK_RATE, flux=FLAT_FLUX if imtype == "flat" else 0.0,
                read_noise=injected["read_noise"], gain=injected["gain"],
                defects=injected["defects"], detector_seed=injected["detector_seed"],
                seed=100 * d + i + 1,
            ))
    corrupt = raw / "jw01234999001_01101_00001_nrca1_uncal.fits"
    write_bad_file(corrupt, "truncated")
    paths.append(corrupt)
    references = "\n".join(f"    {reftype}: refs/*/synth_*_{reftype}.fits"
                           for reftype in REFERENCE_TYPES)
    (directory / "refsmith.yaml").write_text(DEMO_CONFIG % {"references": references})
    return paths


def partly_processed_product(directory: Path) -> Path:
    """Where the demo's partly processed exposure (its ``dq_init`` product) is."""
    d, i = PARTLY_PROCESSED
    name = exposure_name(d, i, DETECTORS[d]).replace("_uncal.fits", "_dq_init.fits")
    return directory / "products" / name


def process_one_exposure(directory: Path) -> Path:
    """Run the real pipeline to dq_init on one raw exposure; the product goes into
    ``products/``, where the config's ``search_dirs`` let the planner start from it."""
    from refsmith.calibrate.runner import run_calibration
    from refsmith.errors import RefsmithError
    from refsmith.synthetic.references import reference_overrides

    d, i = PARTLY_PROCESSED
    detector = DETECTORS[d]
    raw = directory / "raw" / exposure_name(d, i, detector)
    product = partly_processed_product(directory)
    mask = directory / "refs" / detector.lower() / f"synth_{detector.lower()}_sub64p_mask.fits"
    result = run_calibration(
        str(raw), ("group_scale", "dq_init"), [(("group_scale", "dq_init"), str(product))],
        reference_overrides({"mask": mask}, steps=("dq_init",)),
        str(product.with_suffix(".log")), instrument="NIRCAM")
    if not result.ok:
        raise RefsmithError(f"demo set-up: processing {raw.name} failed: {result.error}")
    return product


def _offline_crds(directory: Path) -> None:
    """Use crds off-line, whatever the user's CRDS environment (a test session already is)."""
    from refsmith.calibrate.offline import SERVERLESS_URL, configure_offline, server_config_path

    current = os.environ.get("CRDS_PATH")
    if not (os.environ.get("CRDS_SERVER_URL") == SERVERLESS_URL and current
            and server_config_path(Path(current)).is_file()):
        configure_offline(directory / "out" / "crds")


def compare_with_truth(final_dir: Path, refs_dir: Path) -> dict[str, dict[str, float]]:
    """Recovered versus injected properties, per detector, from the final files.

    ``refs_dir`` is the demo's ``refs/`` (its superbias files hold the injected bias).

    Returns
    -------
    dict
        detector -> ``readnoise`` (RMS ratio of the file's CDS noise to sqrt(2) x the
        injected noise per read), ``gain`` (median ratio recovered/injected over the
        science pixels), ``dark_rate`` (median DN/s of the normal pixels),
        ``superbias`` (RMS DN of recovered minus injected bias plus first-group dark charge),
        ``bad_found``, ``bad_injected`` and ``bad_false`` (pixel counts).
    """
    from astropy.io import fits
    from stdatamodels.jwst.datamodels import dqflags

    from refsmith.synthetic.ramps import frame_time, group_times

    ny, nx = SHAPE[2:]
    science = np.zeros((ny, nx), bool)
    science[4:, 4:] = True
    times = group_times(SHAPE[1], 1, 0, frame_time("NIRCAM", ny, nx))
    bad = sum(dqflags.pixel[flag] for flag in BAD_PIXEL_FLAGS)
    results = {}
    for detector in DETECTORS:
        injected = truth(detector)
        defects = injected["defects"]
        normal = science & ~defects.any
        noise = injected["read_noise"]

        def final(recipe: str, extension: str = "SCI", detector: str = detector) -> Any:
            name = f"{recipe}_{detector}-SUB64P-RAPID.fits"
            return fits.getdata(final_dir / recipe / name, extension).astype(float)

        ramp = final("dark")
        dark = np.where(defects.hot, DARK_RATE + defects.hot_rate, DARK_RATE)
        dark = np.where(science & ~defects.dead, dark, 0.0)
        name = detector.lower()
        bias = fits.getdata(refs_dir / name / f"synth_{name}_sub64p_superbias.fits", "SCI")
        bias = bias + dark * times[0]  # the first group holds its frame's dark charge too
        flagged = (final("bad_pixel_mask", "DQ").astype(np.uint32) & bad) != 0
        results[detector] = {
            # READNOISE holds CDS noise (sqrt(2) x per read); compared as an RMS: a median
            # of noise estimates from a few samples each is biased low
            "readnoise": float(np.sqrt(np.mean(
                (final("readnoise")[normal] / (np.sqrt(2) * noise[normal])) ** 2))),
            "gain": float(np.median(final("gain")[normal] / injected["gain"][normal])),
            "dark_rate": float(np.median((ramp[-1] - ramp[0])[normal])
                               / (times[-1] - times[0])),
            "superbias": float(np.sqrt(np.mean((final("superbias") - bias)[normal] ** 2))),
            "bad_found": int(np.sum(flagged & defects.any)),
            "bad_injected": int(defects.any.sum()),
            "bad_false": int(np.sum(flagged & ~defects.any)),
        }
    return results


def run_demo(directory: Path, console: Console, *, workers: int | None = None,
             as_json: bool = False) -> int:
    """Write the demo data set (once), then run the whole chain on it, off-line.

    ``workers``: local worker processes (``--workers``; default: the demo config's 2).
    ``as_json``: also write the results as one JSON object on stdout (the account still
    goes to ``console``: give one on stderr).
    """
    from refsmith.config.loading import load_config
    from refsmith.running import RunOptions, run, status

    started = time.perf_counter()
    directory = directory.resolve()
    config_path = directory / "refsmith.yaml"
    config_text = config_path.read_text() if config_path.is_file() else ""
    is_demo = config_text.startswith(MARKER.split(", data set")[0])
    if not is_demo and directory.is_dir() and any(directory.iterdir()):
        from refsmith.errors import RefsmithError

        raise RefsmithError(f"{directory} is not empty and is not a refsmith demo "
                            "directory: give a new or empty directory for the demo")
    _offline_crds(directory)  # before anything imports crds
    if config_text.startswith(MARKER) and partly_processed_product(directory).is_file():
        console.print(f"reusing the demo data set in {directory}", markup=False)
    else:
        # an older demo's data set, or an interrupted set-up: start afresh
        if is_demo:
            for old in ("raw", "refs", "products", "out/calibrated", "out/refsmith"):
                shutil.rmtree(directory / old, ignore_errors=True)
        files = write_dataset(directory)
        console.print(f"wrote {len(files)} synthetic NIRCam exposures (2 detectors, 6 weeks, "
                      f"one corrupt) to {directory / 'raw'}, reference files to "
                      f"{directory / 'refs'}, the config {config_path}", markup=False)
        product = process_one_exposure(directory)
        console.print(f"processed one exposure to dq_init with the pipeline: {product}",
                      markup=False)
    summary = run(load_config(config_path),
                  options=RunOptions(progress="auto", workers=workers), stream=sys.stderr)
    _print_summary(summary, status(summary.run_dir), console)
    found: dict[str, dict[str, float]] = {}
    if not summary.exit_code and (summary.run_dir / "final").is_dir():
        found = _print_truth(summary.run_dir / "final", directory / "refs", console)
    example = exposure_name(*PARTLY_PROCESSED, DETECTORS[PARTLY_PROCESSED[0]])
    console.print(f"explain a file: refsmith explain {config_path} {example}", markup=False)
    console.print(f"done in {time.perf_counter() - started:.1f} s")
    if as_json:
        import json

        final = summary.run_dir / "final"
        sys.stdout.write(json.dumps({
            "directory": str(directory), "config": str(config_path), "run": summary.to_dict(),
            "final_files": [str(path) for path in sorted(final.rglob("*.fits"))],
            "recovered_over_injected": found,
        }, indent=1) + "\n")
    return summary.exit_code


def _print_summary(summary: Any, state: dict[str, Any], console: Console) -> None:
    import json

    plan = json.loads((summary.run_dir / "plan.json").read_text())
    exposures = plan["exposures"]
    usable = sum(e["usable"] for e in exposures)
    console.print(f"[bold]scan[/]: {len(exposures)} files, {usable} usable, "
                  f"{len(exposures) - usable} unusable")
    for exposure in exposures:
        if not exposure["usable"]:
            console.print(f"  unusable: {Path(exposure['path']).name}: {exposure['reason']}",
                          markup=False)
    console.print(f"[bold]plan[/]: {len(plan['groups'])} groups, {len(plan['leftovers'])} "
                  "candidates left out (each with its reason)")
    for kind, label in (("calibration", "calibration (calwebb_detector1)"),
                        ("reffile", "individual reference files"),
                        ("combine", "final reference files")):
        jobs = [j for j in state["jobs"] if j["kind"] == kind]
        states = ", ".join(f"{n} {s}" for s, n in sorted(
            {j["state"]: sum(k["state"] == j["state"] for k in jobs) for j in jobs}.items()))
        console.print(f"[bold]run[/] {label}: {len(jobs)} jobs ({states or 'none'})")
    console.print(f"[bold]run[/]: {summary.executed} jobs executed now, "
                  f"{summary.counts.get('failed', 0)} failed, in {summary.seconds:.1f} s")
    for failure in summary.failures:
        console.print(f"[red]failed[/] {failure['id']}: {failure['error']} "
                      f"(log {failure['log']})", markup=False)
    finals = sorted((summary.run_dir / "final").rglob("*.fits"))
    console.print(f"[bold]final reference files[/] ({len(finals)}) in "
                  f"{summary.run_dir / 'final'}:")
    for path in finals:
        console.print(f"  {path.relative_to(summary.run_dir / 'final')}", markup=False)
    if (summary.run_dir / "rejected").is_dir():
        console.print(f"[red]rejected[/] files in {summary.run_dir / 'rejected'}")
    if summary.report:
        console.print(f"report: {summary.report}", markup=False)
    elif summary.report_error:
        console.print(f"[red]no report[/]: {summary.report_error}", markup=False)


def _print_truth(final_dir: Path, refs_dir: Path, console: Console
                 ) -> dict[str, dict[str, float]]:
    try:
        found = compare_with_truth(final_dir, refs_dir)
    except OSError:  # the config was edited: not every final file is made
        return {}
    for detector, r in found.items():
        console.print(
            f"{detector} recovered/injected: CDS read noise {r['readnoise']:.3f}, gain "
            f"{r['gain']:.3f}, dark rate {r['dark_rate']:.2f} DN/s ({DARK_RATE}), superbias "
            f"residual {r['superbias']:.2f} DN rms, bad pixels {r['bad_found']}/"
            f"{r['bad_injected']} found ({r['bad_false']} false)", markup=False)
    return found

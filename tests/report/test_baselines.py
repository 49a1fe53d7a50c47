"""Which baseline a final file is compared with: config, CRDS (cache), previous run."""

from __future__ import annotations

import os
import time

import numpy as np
from astropy.io import fits

from refsmith.report.baselines import BaselineFinder
from refsmith.report.rundata import RunData, StoreView

HEADER = {"REFTYPE": "READNOISE", "INSTRUME": "NIRCAM", "DETECTOR": "NRCA1",
          "SUBARRAY": "SUB64P"}


def write(path, **header):
    path.parent.mkdir(parents=True, exist_ok=True)
    primary = fits.PrimaryHDU()
    primary.header.update(header)
    fits.HDUList([primary, fits.ImageHDU(np.zeros((8, 8), np.float32), name="SCI")]
                 ).writeto(path)
    return path


def a_run(tmp_path, *, offline, used="crds://jwst_nircam_readnoise_0042.fits", config=None):
    run_dir = tmp_path / "out" / "run002"
    final = write(run_dir / "final" / "readnoise" / "rn_NRCA1.fits", **HEADER)
    individual = str(run_dir / "reffiles" / "readnoise" / "rn-001.fits")
    product = write(tmp_path / "out" / "calibrated" / "x_dq_init.fits", R_READNO=used)
    plan = {"config": str(config) if config else None,
            "combine_jobs": [{"output": str(final), "inputs": [individual]}],
            "reffile_jobs": [{"output": individual, "inputs": [{"path": str(product)}]}]}
    run = RunData(run_dir, plan, StoreView(jobs=[], run={"offline": offline}), [final], [])
    return run, final


def test_crds_choice_from_the_cache(tmp_path, monkeypatch):
    cache = tmp_path / "crds"
    cached = write(cache / "references" / "jwst" / "nircam" / "jwst_nircam_readnoise_0042.fits")
    monkeypatch.setenv("CRDS_PATH", str(cache))
    run, final = a_run(tmp_path, offline=False)
    found = BaselineFinder(run).find(final, "readnoise", HEADER)
    assert found.path == cached and found.source.startswith("CRDS")
    assert "no report.baselines entry for readnoise" in found.notes
    cached.unlink()
    missing = BaselineFinder(run).find(final, "readnoise", HEADER)
    assert missing.path is None
    assert any("jwst_nircam_readnoise_0042.fits, which is not in the CRDS cache" in n
               for n in missing.notes)


def test_off_line_runs_do_not_ask_crds(tmp_path):
    run, final = a_run(tmp_path, offline=True)
    found = BaselineFinder(run).find(final, "readnoise", HEADER)
    assert found.path is None
    assert "CRDS not asked: the run was off-line" in found.notes
    assert "no earlier run directory holds this final file" in found.notes


def test_a_file_given_by_the_pipeline_config_is_no_crds_choice(tmp_path):
    run, final = a_run(tmp_path, offline=False, used="/refs/my_readnoise.fits")
    notes = BaselineFinder(run).find(final, "readnoise", HEADER).notes
    assert any("used no CRDS readnoise file" in n and "/refs/my_readnoise.fits" in n
               for n in notes)


def test_config_first_then_previous_run(tmp_path):
    ref = write(tmp_path / "refs" / "nrca1_sub64p_readnoise.fits", **HEADER)
    write(tmp_path / "refs" / "nrcb1_sub64p_readnoise.fits", **{**HEADER, "DETECTOR": "NRCB1"})
    full = write(tmp_path / "refs" / "nrca1_full_readnoise.fits",
                 **{**HEADER, "SUBARRAY": "FULL"})
    config = tmp_path / "refsmith.yaml"
    config.write_text("recipes: {readnoise: {imtypes: DD}}\n"
                      "report: {baselines: {READNOISE: 'refs/*_readnoise.fits'}, sigma: 3}\n")
    run, final = a_run(tmp_path, offline=True, config=config)
    finder = BaselineFinder(run)
    assert finder.sigma == 3.0
    found = finder.find(final, "readnoise", HEADER)
    assert (found.path, found.source) == (ref, "config")  # exact subarray beats full frame
    ref.unlink()
    assert finder.find(final, "readnoise", HEADER).path == full
    full.unlink()
    # nothing configured matches: the same file of an older run directory
    older = write(tmp_path / "out" / "run001" / "final" / "readnoise" / final.name)
    newer = write(tmp_path / "out" / "run003" / "final" / "readnoise" / final.name)
    past = time.time() - 100
    os.utime(older, (past, past))
    found = finder.find(final, "readnoise", HEADER)
    assert found.path == older and found.source == "previous run run001"
    assert newer != found.path
    assert any("no file of this DETECTOR and SUBARRAY" in n for n in found.notes)


def test_an_unreadable_config_is_a_note(tmp_path):
    config = tmp_path / "refsmith.yaml"
    config.write_text("report: {sigma: -1}\n")
    run, _ = a_run(tmp_path, offline=True, config=config)
    finder = BaselineFinder(run)
    assert finder.baselines == {} and "the config cannot be read" in finder.config_notes[0]

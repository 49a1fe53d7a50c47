"""`refsmith explain` of a file whose config names no inputs (issue 15, item 5): a
jwst_reffiles mkrefs.cfg takes its inputs from the command line, so a file given by path is
explained as one more input, the other inputs may follow it, and the run-directory form
uses the run's inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refsmith.cli import main
from refsmith.synthetic.headers import write_exposure

LEGACY = Path(__file__).parents[1] / "data" / "legacy" / "jwst_reffiles" / "mkrefs.cfg"


@pytest.fixture
def darks(tmp_path: Path, monkeypatch) -> Path:
    """Three NIRCam darks named as jwst_reffiles expects (its dark_pattern), a day apart;
    the shipped mkrefs.cfg reads the time from DATE-END/TIME-END."""
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "out"))
    monkeypatch.chdir(tmp_path)
    for i in range(3):
        write_exposure(tmp_path / "raw" / f"NRCA1_DARK_{i}_uncal.fits", mjd=60000.0 + i,
                       extra={"DATE-END": f"2023-02-2{5 + i}", "TIME-END": "00:00:00"})
    return tmp_path / "raw"


def test_a_file_given_by_path_is_explained_as_one_more_input(darks, capsys):
    first = darks / "NRCA1_DARK_0_uncal.fits"
    assert main(["explain", str(LEGACY), str(first)]) == 0  # was: "not among the 0 inputs"
    text = capsys.readouterr().out
    assert text.startswith(f"{first}\n")
    assert "note: the config names no inputs" in text and "explained as one more input" in text
    assert "image type  dark" in text
    assert "recipe rdnoise_nircam:" in text and "left out:" in text  # alone: no partner


def test_the_other_inputs_may_follow_the_file(darks, capsys):
    assert main(["explain", str(LEGACY), str(darks / "NRCA1_DARK_0_uncal.fits"),
                 str(darks)]) == 0
    text = capsys.readouterr().out
    assert "note:" not in text
    assert "recipe rdnoise_nircam:\n  in group rdnoise_nircam-" in text
    assert "as D1 with D2 NRCA1_DARK_1_uncal.fits" in text
    # a base name is looked for among those inputs
    assert main(["explain", str(LEGACY), "NRCA1_DARK_1_uncal.fits", str(darks)]) == 0
    assert "as D2 with D1 NRCA1_DARK_0_uncal.fits" in capsys.readouterr().out


def test_a_base_name_not_among_no_inputs_says_what_to_give(darks, capsys):
    assert main(["explain", str(LEGACY), "NRCA1_DARK_0_uncal.fits"]) == 2
    err = capsys.readouterr().err
    assert "not among the 0 inputs of this config, and no such file" in err
    assert "refsmith explain CONFIG FILE INPUTS" in err and "Traceback" not in err


def test_the_run_directory_form_uses_the_runs_inputs(darks, capsys):
    assert main(["plan", str(LEGACY), str(darks), "--format", "json"]) == 0
    run_dir = Path(json.loads(capsys.readouterr().out)["run_dir"])
    assert main(["explain", str(run_dir), "NRCA1_DARK_1_uncal.fits"]) == 0
    text = capsys.readouterr().out
    assert "note:" not in text
    assert "as D2 with D1 NRCA1_DARK_0_uncal.fits" in text
    assert main(["explain", str(run_dir), "NRCA1_DARK_2_uncal.fits"]) == 0
    assert "left out: only 1 dark remains" in capsys.readouterr().out
    # a config file's own inputs.paths: a file it does not list is one more input too
    config = darks.parent / "refsmith.yaml"
    config.write_text("inputs: {paths: [raw/NRCA1_DARK_0_uncal.fits]}\n"
                      "recipes: {readnoise: {imtypes: DD, steps: dq_init-}}\n")
    assert main(["explain", str(config), "raw/NRCA1_DARK_1_uncal.fits"]) == 0
    text = capsys.readouterr().out
    assert "note: it is not among the 1 inputs of this config" in text
    assert "as D2 with D1 NRCA1_DARK_0_uncal.fits" in text

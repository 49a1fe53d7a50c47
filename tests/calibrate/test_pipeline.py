"""Running one calibration job with the real calwebb_detector1, off-line, on tiny data."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

# Off-line CRDS is configured for the whole session in conftest.py (before any jwst import).
from conftest import CRDS_DIR
from refsmith.calibrate.offline import (
    OfflineConfigError,
    bounded_crds_timeout,
    configure_offline,
    server_config_path,
)
from refsmith.calibrate.runner import LOGGER_NAMES, STEP_REFERENCE_TYPES, run_calibration
from refsmith.detector1.keywords import STEP_KEYWORDS
from refsmith.detector1.steps import step_order
from refsmith.jobs.result import CalibrationResult
from refsmith.synthetic.ramps import write_raw_exposure
from refsmith.synthetic.references import reference_overrides, write_reference_files

SHAPE = (1, 5, 64, 64)
ORDER = step_order("NIRCAM")
ALL_STEPS = (
    "group_scale", "dq_init", "saturation", "ipc", "superbias", "refpix", "linearity",
    "dark_current", "jump", "ramp_fit", "gain_scale",
)
FIRST = ALL_STEPS[:5]  # group_scale .. superbias
REST = ALL_STEPS[5:]


def s_state(path: Path) -> dict[str, str]:
    header = fits.getheader(path, 0)
    return {kw: header[kw] for kw in STEP_KEYWORDS.values() if kw in header}


def file_fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def logger_settings() -> list[tuple]:
    import crds.core.log

    settings = [
        (name, logging.getLogger(name).level, logging.getLogger(name).propagate,
         tuple((type(h), getattr(h, "stream", None)) for h in logging.getLogger(name).handlers))
        for name in LOGGER_NAMES
    ]
    return [*settings, crds.core.log.THE_LOGGER.console is not None]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    raw = write_raw_exposure(root / "jw_dark_uncal.fits", shape=SHAPE, flux=20.0, seed=3)
    refs = write_reference_files(root / "refs", shape=SHAPE)
    return {"root": root, "raw": raw, "overrides": reference_overrides(refs)}


@pytest.fixture(scope="module")
def one_go(synth):
    """Raw -> ramp_fit/gain_scale in one job, also saving the superbias state."""
    out = synth["root"] / "one_go"
    before = file_fingerprint(synth["raw"])
    loggers = logger_settings()
    network: list[object] = []

    def no_network(*args, **kwargs):
        network.append(args)
        raise OSError("network use in an off-line test")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", no_network)
        patch.setattr(socket, "getaddrinfo", no_network)
        result = run_calibration(
            str(synth["raw"]),
            ALL_STEPS,
            [(ALL_STEPS, str(out / "jw_dark_rate.fits")),
             (FIRST, str(out / "jw_dark_superbias.fits"))],
            synth["overrides"],
            str(out / "logs" / "one_go.log"),
            instrument="NIRCAM",
        )
    return {"result": result, "dir": out, "before": before, "network": network,
            "after": file_fingerprint(synth["raw"]), "loggers": (loggers, logger_settings())}


@pytest.fixture(scope="module")
def two_stage(synth):
    """Raw -> superbias, then that product -> ramp_fit/gain_scale."""
    out = synth["root"] / "two_stage"
    first = run_calibration(
        str(synth["raw"]), FIRST, [(FIRST, str(out / "stage1_superbias.fits"))],
        synth["overrides"], str(out / "stage1.log"),
    )
    assert first.ok, first.error
    second = run_calibration(
        first.outputs[0], REST, [(ALL_STEPS, str(out / "stage2_rate.fits"))],
        synth["overrides"], str(out / "stage2.log"),
    )
    return {"first": first, "second": second}


@pytest.mark.slow
def test_full_run_has_exactly_the_target_state(one_go):
    result: CalibrationResult = one_go["result"]
    assert result.ok, result.error
    rate = one_go["dir"] / "jw_dark_rate.fits"
    assert result.outputs == (str(one_go["dir"] / "jw_dark_superbias.fits"), str(rate))
    state = s_state(rate)
    for step in ORDER:
        keyword = STEP_KEYWORDS[step]
        if step in ALL_STEPS and step not in ("group_scale", "gain_scale"):
            assert state.get(keyword) == "COMPLETE", step
        else:
            assert state.get(keyword, "SKIPPED") == "SKIPPED", step
    # observed on synthetic NIRCam data: NFRAMES == FRMDIVSR, no GAINFACT
    assert state["S_GRPSCL"] == "SKIPPED"
    assert state["S_GANSCL"] == "SKIPPED"
    header = fits.getheader(rate, 0)
    assert header["FILENAME"] == rate.name  # not the temporary name
    assert header["R_MASK"].endswith("_mask.fits")
    assert (rate.stat().st_mode & 0o777) != 0o600
    assert leftovers(one_go["dir"]) == []
    assert one_go["network"] == []  # off-line: no connection, no DNS lookup
    with fits.open(rate) as hdus:
        slope = hdus["SCI"].data
        assert slope.shape == SHAPE[2:]
        # 20 DN/s of illumination in the science pixels; dark subtracted
        assert abs(np.median(slope[8:, 8:]) - 20.0) < 8.0


@pytest.mark.slow
def test_intermediate_state_saved_in_the_same_job(one_go, two_stage):
    assert one_go["result"].ok, one_go["result"].error
    saved = one_go["dir"] / "jw_dark_superbias.fits"
    state = s_state(saved)
    assert state == {"S_GRPSCL": "SKIPPED", "S_DQINIT": "COMPLETE", "S_SATURA": "COMPLETE",
                     "S_IPC": "COMPLETE", "S_SUPERB": "COMPLETE"}
    assert fits.getheader(saved, 0)["FILENAME"] == saved.name
    # same data as the same state written as the final output of its own job
    stage1 = Path(two_stage["first"].outputs[0])
    for extension in ("SCI", "PIXELDQ", "GROUPDQ"):
        np.testing.assert_array_equal(
            fits.getdata(saved, extension), fits.getdata(stage1, extension)
        )


@pytest.mark.slow
def test_two_stage_run_equals_one_go(one_go, two_stage):
    second = two_stage["second"]
    assert second.ok, second.error
    resumed, direct = Path(second.outputs[0]), one_go["dir"] / "jw_dark_rate.fits"
    for extension in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"):
        np.testing.assert_array_equal(
            fits.getdata(resumed, extension), fits.getdata(direct, extension), err_msg=extension
        )
    # the steps done in stage 1 come back COMPLETE, not the SKIPPED the pipeline writes
    assert s_state(resumed) == s_state(direct)
    assert s_state(resumed)["S_DQINIT"] == "COMPLETE"


@pytest.mark.slow
def test_input_file_is_not_modified(one_go):
    assert one_go["result"].ok
    assert one_go["after"] == one_go["before"]


@pytest.mark.slow
def test_log_file_has_the_pipeline_records_and_handlers_are_removed(one_go):
    text = Path(one_go["result"].log_path).read_text()
    # stpipe's own records of the steps that ran, through the job's handler
    assert re.search(r" - stpipe\.[\w.]+ - INFO - Step dq_init running with args", text)
    assert re.search(r" - stpipe\.[\w.]+ - INFO - Step dq_init done", text)
    before, after = one_go["loggers"]
    # handlers (in order), levels, propagation, crds console: all restored
    assert after == before, [(a, b) for a, b in zip(before, after, strict=True) if a != b]


@pytest.mark.slow
def test_corrupt_input_fails_cleanly(synth, tmp_path):
    data = synth["raw"].read_bytes()
    truncated = tmp_path / "truncated_uncal.fits"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage_uncal.fits"
    garbage.write_bytes(b"not a FITS file" * 200)
    for bad in (truncated, garbage):
        destination = tmp_path / "out" / f"{bad.stem}_saturation.fits"
        result = run_calibration(
            str(bad), ("dq_init", "saturation"), [(("dq_init", "saturation"), str(destination))],
            synth["overrides"], str(tmp_path / f"{bad.stem}.log"),
        )
        assert not result.ok
        assert result.error and result.outputs == ()
        assert result.log_path == str(tmp_path / f"{bad.stem}.log")
        assert not destination.exists()
        assert not destination.parent.exists() or leftovers(destination.parent) == []
    assert "FITS" in result.error  # garbage: the header cannot be read


@pytest.mark.slow
def test_system_exit_in_a_step_is_a_job_failure(synth, tmp_path, monkeypatch):
    from jwst.saturation.saturation_step import SaturationStep

    def exit_like_crds(self, *args):
        logging.getLogger("CRDS").error("CRDS server connection and cache load FAILED.")
        sys.exit(-1)

    monkeypatch.setattr(SaturationStep, "process", exit_like_crds)
    destination = tmp_path / "x_saturation.fits"
    intermediate = tmp_path / "x_dq_init.fits"
    steps = ("dq_init", "saturation")
    result = run_calibration(
        str(synth["raw"]), steps, [(steps, str(destination)), (steps[:1], str(intermediate))],
        synth["overrides"], str(tmp_path / "exit.log"),
    )
    assert not result.ok
    assert "SystemExit" in result.error and "saturation" in result.error
    assert "cache load FAILED" in result.error
    assert not destination.exists() and not intermediate.exists()  # all or nothing
    assert leftovers(tmp_path) == []
    assert "Traceback" in Path(result.log_path).read_text()


@pytest.mark.slow
def test_unexpected_step_status_fails_the_job(synth, tmp_path, monkeypatch):
    from jwst.superbias.superbias_step import SuperBiasStep

    def pretend_not_applicable(self, step_input):
        model = self.prepare_output(step_input)
        model.meta.cal_step.superbias = "SKIPPED"
        return model

    monkeypatch.setattr(SuperBiasStep, "process", pretend_not_applicable)
    steps = ("dq_init", "saturation", "superbias")
    destination = tmp_path / "y_superbias.fits"
    result = run_calibration(
        str(synth["raw"]), steps, [(steps, str(destination))], synth["overrides"],
        str(tmp_path / "y.log"),
    )
    assert not result.ok
    assert "S_SUPERB (superbias) is SKIPPED, expected COMPLETE" in result.error
    assert not destination.exists() and leftovers(tmp_path) == []


def test_missing_reference_off_line_is_reported_before_running(synth, tmp_path):
    overrides = {s: dict(r) for s, r in synth["overrides"].items() if s != "jump"}
    result = run_calibration(
        str(synth["raw"]), ALL_STEPS, [(ALL_STEPS, str(tmp_path / "z_rate.fits"))],
        overrides, str(tmp_path / "z.log"),
    )
    assert not result.ok
    assert "jump: gain, readnoise" in result.error


@pytest.mark.slow
def test_refuses_to_run_a_done_step_again(two_stage, synth, tmp_path):
    stage1 = two_stage["first"].outputs[0]
    steps = ("superbias", "refpix")
    result = run_calibration(
        stage1, steps, [((*FIRST, "refpix"), str(tmp_path / "again.fits"))],
        synth["overrides"], str(tmp_path / "again.log"),
    )
    assert not result.ok and "superbias" in result.error and "twice" in result.error


@pytest.mark.parametrize(
    ("steps_to_run", "outputs", "message"),
    [
        (("dq_init", "saturation"), [(("dq_init",), "a.fits")], "final state"),
        (("dq_init", "saturation"),
         [(("dq_init", "saturation"), "a.fits"), (("saturation",), "b.fits")],
         "not reached by this run"),
        (("dq_init",), [(("dq_init", "superbias"), "a.fits")], "done before this job"),
        (("dq_init", "emicorr"), [(("dq_init", "emicorr"), "a.fits")], "not calwebb_detector1"),
        ((), [((), "a.fits")], "no step to run"),
    ],
)
def test_inconsistent_jobs_are_rejected(synth, tmp_path, steps_to_run, outputs, message):
    outputs = [(state, str(tmp_path / name)) for state, name in outputs]
    result = run_calibration(str(synth["raw"]), steps_to_run, outputs, synth["overrides"],
                             str(tmp_path / "bad.log"))
    assert not result.ok
    assert message in result.error
    assert not any(Path(dest).exists() for _, dest in outputs)


def test_output_may_not_overwrite_the_start_file(synth, tmp_path):
    result = run_calibration(str(synth["raw"]), ("dq_init",),
                             [(("dq_init",), str(synth["raw"]))], synth["overrides"],
                             str(tmp_path / "o.log"))
    assert not result.ok and "overwrite the start file" in result.error


def test_missing_start_file(tmp_path):
    result = run_calibration(str(tmp_path / "nope.fits"), ("dq_init",),
                             [(("dq_init",), str(tmp_path / "o.fits"))], {}, str(tmp_path / "l"))
    assert not result.ok and "does not exist" in result.error


def test_step_reference_types_match_installed_jwst():
    from jwst.pipeline import Detector1Pipeline

    installed = {
        name: tuple(step.reference_file_types) for name, step in
        Detector1Pipeline.step_defs.items()
    }
    assert installed == STEP_REFERENCE_TYPES


def test_cal_step_attribute_table_matches_schema():
    from stdatamodels.jwst import datamodels

    from refsmith.calibrate.runner import _CAL_STEP_ATTRIBUTE

    model = datamodels.RampModel()
    schema = model.schema
    found = {}

    def walk(node):
        if isinstance(node, dict):
            if "cal_step" in node.get("properties", {}):
                for attr, spec in node["properties"]["cal_step"]["properties"].items():
                    found[attr] = spec.get("fits_keyword")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    for step, attr in _CAL_STEP_ATTRIBUTE.items():
        assert found[attr] == STEP_KEYWORDS[step], step


# --- off-line set-up -----------------------------------------------------------------


def test_configure_offline_is_idempotent_and_writes_server_config():
    environment = configure_offline(CRDS_DIR)
    assert environment["CRDS_SERVER_URL"] == "https://jwst-serverless-mode.stsci.edu"
    assert os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] == "True"
    assert Path(os.environ["CRDS_PATH"]) == CRDS_DIR.resolve()
    import ast

    config = ast.literal_eval(server_config_path(CRDS_DIR.resolve()).read_text())
    assert config["observatory"] == "jwst" and config["last_synced"]
    assert configure_offline(CRDS_DIR) == environment


def test_configure_offline_refuses_to_switch_a_loaded_crds(tmp_path):
    import crds  # noqa: F401  (loaded by now)

    before = dict(os.environ)
    with pytest.raises(OfflineConfigError, match="before importing jwst or crds"):
        configure_offline(tmp_path / "other")
    assert dict(os.environ) == before
    assert not (tmp_path / "other").exists()


def test_bounded_crds_timeout(monkeypatch):
    monkeypatch.delenv("CRDS_CLIENT_TIMEOUT_SECONDS", raising=False)
    assert bounded_crds_timeout(12.5) == {"CRDS_CLIENT_TIMEOUT_SECONDS": "13"}
    assert bounded_crds_timeout(60) == {"CRDS_CLIENT_TIMEOUT_SECONDS": "13"}  # keeps smaller
    from crds.core import config

    assert config.get_client_timeout_seconds() == 13
    with pytest.raises(ValueError):
        bounded_crds_timeout(0)


def test_unwritable_log_is_a_job_failure(synth, tmp_path):
    (tmp_path / "file").write_text("")
    result = run_calibration(str(synth["raw"]), ("dq_init",),
                             [(("dq_init",), str(tmp_path / "o.fits"))], synth["overrides"],
                             str(tmp_path / "file" / "job.log"))
    assert not result.ok and "cannot write the job log" in result.error


@pytest.mark.slow
def test_fitopt_product_is_kept_with_the_final_one(two_stage, synth, tmp_path):
    """save_steps: fitopt -> ramp_fit's optional results, written like every output."""
    from refsmith.execute.worker import _calibration
    from refsmith.jobs.records import CalibrationJob, ProductOutput

    start = two_stage["first"].outputs[0]
    job = CalibrationJob(
        id="cal-fitopt", exposure=str(synth["raw"]), instrument="NIRCAM", start_file=start,
        start_steps=FIRST, steps_to_run=REST, steps_to_skip=(),
        outputs=(ProductOutput(ALL_STEPS, str(tmp_path / "x_rate.fits")),
                 ProductOutput(ALL_STEPS[:-1], str(tmp_path / "x_fitopt.fits"), "fitopt")),
        overrides=synth["overrides"])
    result = _calibration(job.to_dict(), str(tmp_path / "job.log"))
    assert result["ok"], result["error"]
    assert sorted(result["outputs"]) == sorted(o.path for o in job.outputs)
    with fits.open(tmp_path / "x_fitopt.fits") as hdus:
        names = {h.name for h in hdus}
        assert {"SLOPE", "SIGSLOPE", "YINT", "WEIGHTS"} <= names
        assert hdus["SLOPE"].data.shape[-2:] == SHAPE[-2:]
        assert np.isfinite(hdus["SLOPE"].data).any()
    assert s_state(tmp_path / "x_rate.fits") == s_state(two_stage["second"].outputs[0])
    assert not leftovers(tmp_path)
    assert not (Path(start).parent / "x_fitopt.fits").exists()  # not the pipeline's name


def test_fitopt_needs_ramp_fit_in_the_job(synth, tmp_path):
    result = run_calibration(
        str(synth["raw"]), FIRST, [(FIRST, str(tmp_path / "x_superbias.fits"))],
        synth["overrides"], str(tmp_path / "job.log"), fitopt=str(tmp_path / "x_fitopt.fits"))
    assert not result.ok
    assert "does not run ramp_fit" in result.error
    assert not list(tmp_path.glob("x_*"))

"""The configs jwst_reffiles ships, through ``refsmith plan`` and ``refsmith run`` as they
are, on header-only NIRCam darks and flats named by their patterns (issue 15).

A slow test runs a legacy config end to end with the real pipeline (tests/run_dataset.py's
tiny exposures and synthetic reference files).
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from refsmith.cli import main
from refsmith.synthetic.headers import write_exposure

SHIPPED = Path(__file__).parents[1] / "data" / "legacy" / "jwst_reffiles"
# jwst_reffiles' own parameters in mkrefs_miri_defaults.cfg's bad_pixel_mask section
JWST_REFFILES_PARAMS = (
    "dead_search", "low_qe_and_open_search", "dead_search_type", "sigma_threshold",
    "smoothing_box_width", "dead_sigma_threshold", "dead_zero_signal_fraction",
    "max_dead_norm_signal", "max_low_qe_norm_signal", "max_open_adj_norm_signal",
    "do_not_use", "quality_check")
MJD0 = datetime(1858, 11, 17)


def ground_test(path: Path, detector: str, mjd: float, flat: bool = False) -> Path:
    """A NIRCam ground-test-like exposure: the time in DATE-END + TIME-END."""
    end = MJD0 + timedelta(days=mjd + 0.01)
    return write_exposure(path, detector=detector, mjd=mjd, readpatt="RAPID",
                          exp_type="NRC_FLAT" if flat else "NRC_DARK",
                          extra={"DATE-END": end.strftime("%Y-%m-%d"),
                                 "TIME-END": end.strftime("%H:%M:%S")})


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Darks (``_DARK_``) and flats (``_LIN_``) of NRCA1 and NRCB1, the shipped configs and
    $JWST_MKREFS_OUTDIR."""
    raw = tmp_path / "raw"
    for detector in ("NRCA1", "NRCB1"):
        for i in range(4):
            ground_test(raw / f"{detector}_DARK_{i:03d}_uncal.fits", detector, 60000.0 + 0.2 * i)
            ground_test(raw / f"{detector}_LIN_{i:03d}_uncal.fits", detector,
                        60001.0 + 0.2 * i, flat=True)
    for name in ("mkrefs.cfg", "mkrefs_miri_defaults.cfg"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "out"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def plan_json(capsys) -> tuple[dict, str]:
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def imtypes(plan: dict) -> dict[str | None, int]:
    """Usable exposures per image type (None: unclassified); unusable ones under '-'."""
    counts: dict[str | None, int] = {}
    for exposure in plan["exposures"]:
        key = exposure["imtype"] if exposure["usable"] else "-"
        counts[key] = counts.get(key, 0) + 1
    return counts


def recipes_of(plan: dict) -> dict[str, tuple[int, set[str]]]:
    """recipe -> (groups, plug-ins of its reference-file jobs)."""
    result: dict[str, tuple[int, set[str]]] = {}
    for group in plan["groups"]:
        count, plugins = result.get(group["recipe"], (0, set()))
        result[group["recipe"]] = (count + 1, plugins)
    for job in plan["reffile_jobs"]:
        result[job["recipe"]][1].add(job["plugin"])
    return result


# ---------------------------------------------------------------- the shipped configs


def test_shipped_mkrefs_cfg_plans_as_it_is(project, capsys):
    assert main(["plan", "mkrefs.cfg", "raw", "--format", "json"]) == 0
    plan, err = plan_json(capsys)
    assert Path(plan["run_dir"]) == project / "out" / "test1" / "run000"
    assert imtypes(plan) == {"dark": 8, "flat": 8}
    assert recipes_of(plan) == {
        "gain_armin": (4, {"gain"}),              # 2 dark pairs x 2 flat pairs per detector
        "bpm": (8, {"bad_pixel_mask"}),           # imtypes D: one dark each
        "rdnoise_nircam": (4, {"readnoise"}),     # dark pairs
    }
    assert "not installed" not in err and not plan["warnings"]
    assert "notice: rdnoise_nircam: no plug-in named 'rdnoise_nircam'" in err


def test_shipped_miri_defaults_cfg_plans_as_it_is(project, capsys):
    """Everything but its bad_pixel_mask section plans; that section gives jwst_reffiles'
    own bad-pixel parameters to refsmith's bad_pixel_mask, which reports those it does not
    take at their lines (and slope inputs, if it reads ramps)."""
    from refsmith.plugins.registry import load_plugin

    code = main(["plan", "mkrefs_miri_defaults.cfg", "raw"])
    err = capsys.readouterr().err
    lines = (project / "mkrefs_miri_defaults.cfg").read_text().splitlines()
    section = range(lines.index("bad_pixel_mask:") + 1, lines.index("rdnoise_nircam:"))
    errors = re.findall(r"mkrefs_miri_defaults\.cfg:(\d+): (\S+) \(from (\S+)\)", err)
    params = load_plugin("bad_pixel_mask").Params.model_fields
    taken = {f.alias or name for name, f in params.items()}
    unknown = sorted(set(JWST_REFFILES_PARAMS) - taken)
    assert code == (2 if errors else 0), err
    assert all(int(line) in section and key.startswith("recipes.bad_pixel_mask.") and
               origin.startswith("bad_pixel_mask.") for line, key, origin in errors), errors
    assert sorted(key.rsplit(".", 1)[1] for _, key, _ in errors if ".params." in key) == \
        unknown
    if unknown:
        assert "unknown parameter of plug-in 'bad_pixel_mask'" in err
    assert "test1" not in "".join(key for _, key, _ in errors)  # rdnoise_nircam's: dropped
    # the rest of the file, as it is
    text = (project / "mkrefs_miri_defaults.cfg").read_text()
    (project / "rest.cfg").write_text(text.replace(
        "reflabels: [bad_pixel_mask,gain_armin,bpm,rdnoise_nircam]",
        "reflabels: [gain_armin,bpm,rdnoise_nircam]"))
    assert main(["plan", "rest.cfg", "raw", "--format", "json"]) == 0
    plan, err = plan_json(capsys)
    assert Path(plan["run_dir"]) == project / "out" / "test1" / "run000"
    assert recipes_of(plan) == {"gain_armin": (4, {"gain"}), "rdnoise_nircam": (4, {"readnoise"})}
    # test4ssb: True -> every reference-file job validates with the pipeline
    assert {job["params"].get("validate") for job in plan["reffile_jobs"]} == {"pipeline"}
    assert "not installed" not in err


# ---------------------------------------------------------------- runID: AUTO, --new-run


def test_auto_run_is_resumed_by_plan_and_run_and_new_run_starts_the_next(project, capsys):
    base = project / "out" / "test1"

    def run_dir(*argv: str) -> Path:
        assert main([*argv, "--format", "json"]) == 0
        return Path(json.loads(capsys.readouterr().out)["run_dir"])

    assert run_dir("plan", "mkrefs.cfg", "raw") == base / "run000"
    assert run_dir("plan", "mkrefs.cfg", "raw") == base / "run000"  # not run001
    assert run_dir("run", "mkrefs.cfg", "raw", "--dry-run") == base / "run000"
    assert run_dir("plan", "mkrefs.cfg", "raw", "--new-run") == base / "run001"
    assert run_dir("run", "mkrefs.cfg", "raw", "--dry-run") == base / "run001"
    assert run_dir("run", "mkrefs.cfg", "raw", "--dry-run", "--new-run") == base / "run002"
    assert run_dir("plan", "mkrefs.cfg", "raw") == base / "run002"
    assert sorted(p.name for p in base.glob("run*")) == ["run000", "run001", "run002"]


def test_new_run_is_refused_where_runs_are_not_numbered(project, capsys):
    config = project / "refsmith.yaml"
    config.write_text("inputs: {paths: [raw]}\noutput: {root: out2}\n"
                      "recipes: {readnoise: {imtypes: DD}}\n")
    assert main(["plan", str(config), "--new-run"]) == 2
    assert "--new-run needs numbered runs, but output.run is 'auto'" in capsys.readouterr().err
    assert main(["run", "mkrefs.cfg", "raw", "--new-run", "--run-dir", "x", "--dry-run"]) == 2
    assert "--new-run and --run-dir exclude each other" in capsys.readouterr().err
    assert not (project / "out2").exists() and not (project / "x").exists()


# ---------------------------------------------------------------- symlinked inputs


def test_symlinks_named_by_the_patterns_are_planned(project, capsys):
    links = project / "links"
    links.mkdir()
    for i, target in enumerate(sorted((project / "raw").glob("NRCA1_DARK_*"))):
        archived = project / "archive" / f"jw01234{i:03d}001_01101_00001_nrca1_uncal.fits"
        archived.parent.mkdir(exist_ok=True)
        target.rename(archived)
        (links / target.name).symlink_to(archived)
    assert main(["plan", "mkrefs.cfg", "links", "--format", "json"]) == 0
    plan, _ = plan_json(capsys)
    assert imtypes(plan) == {"dark": 4}
    assert recipes_of(plan)["rdnoise_nircam"][0] == 2
    assert all("/archive/" in m["path"] for g in plan["groups"] for m in g["members"])


# ---------------------------------------------------------------- configuration failures


@pytest.mark.slow
def test_a_job_that_cannot_find_its_plugin_is_not_retried(project, capsys):
    """A reflabel whose reftype has no built-in and no plug-in of its name: the plan warns,
    its jobs fail once at run time (not retried: retries are for transient failures)."""
    config = project / "lin.cfg"
    config.write_text((project / "mkrefs.cfg").read_text().replace(
        "reflabels: [gain_armin,bpm,rdnoise_nircam]", "reflabels: [lin_armin]") +
        "\nlin_armin:\n    reftype: linearity\n    imtypes: D\n    ssbsteps: None\n"
        "    ssb_save_steps: None\n")
    code = main(["run", str(config), "raw", "--format", "json", "--progress", "none",
                 "--retries", "3", "--workers", "1", "--no-report"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert summary["counts"]["failed"] == 8 and summary["retried"] == 0  # one per dark
    assert summary["executed"] == 8
    assert all("plug-in 'lin_armin' is not installed" in f["error"]
               for f in summary["failures"])


@pytest.mark.parametrize(("plugin", "reftype", "params", "error", "permanent"), [
    ("lin_armin", "linearity", {}, "plug-in 'lin_armin' is not installed", True),
    ("readnoise", "readnoise", {"test1": 6}, "unknown parameter 'test1'", True),
    ("readnoise", "gain", {}, "makes reftype 'gain' but plug-in 'readnoise' makes", True),
    # a failure of the data (here: the inputs are missing) may be retried
    ("readnoise", "readnoise", {}, "plug-in 'readnoise' failed", False),
])
def test_configuration_failures_of_a_job_are_permanent(tmp_path, plugin, reftype, params,
                                                        error, permanent):
    """What the DAG loop reads (execute.worker's result dict): ``permanent`` stops retries
    for the configuration reasons a plan may not catch (a plan.json of an older refsmith,
    a plug-in the plan could not import)."""
    from refsmith.execute.worker import _result_dict
    from refsmith.jobs.records import ReffileJob
    from refsmith.plugins.runner import run_reffile_job

    job = ReffileJob.from_dict({
        "id": "ref-x", "recipe": "x", "reftype": reftype, "group": "x-NRCA1-001",
        "plugin": plugin, "output": str(tmp_path / "x.fits"), "params": params,
        "inputs": [{"role": "D1", "exposure": str(tmp_path / "gone_uncal.fits"),
                    "path": str(tmp_path / "gone_uncal.fits"), "steps": {}}]})
    result = _result_dict(run_reffile_job(job, str(tmp_path / "x.log")))
    assert not result["ok"] and error in result["error"]
    assert result.get("permanent", False) is permanent


# ---------------------------------------------------------------- with the real pipeline

LEGACY_RUN = """\
instrument: NIRCam
reflabels: [rdnoise_nircam]
reftypes: [rdnoise]
inputfiles:
   dark_pattern: Bias|Dark|BIAS|DARK|ZERO
   flat_pattern: GAIN|LIN
   basenamepattern: (.*)\\_uncal\\.fits$
   mjdobs_fitskey: EXPSTART
   requiredfitskeys: [INSTRUME,DETECTOR,NGROUPS,NINTS,TGROUP,SUBARRAY]
DD:
   max_Delta_MJD: 2.0
output:
   outrootdir: out
   outsubdir: test1
   runID: AUTO
   runIDNdigits: 3
test4datamodel: False
test4ssb: True
reffile4ssb:
{references}
rdnoise_nircam:
    reftype: rdnoise
    imtypes: DD
    ssbsteps: dq_init-
    ssb_save_steps: None
    test1: 6
"""


@pytest.mark.slow
def test_a_legacy_config_runs_with_the_pipeline_and_resumes_its_auto_run(tmp_path, capsys,
                                                                        monkeypatch):
    """jwst_reffiles' way end to end on real tiny exposures: symlinks named by the
    patterns, runID: AUTO planned then run then resumed, rdnoise_nircam made by the
    built-in readnoise, test4ssb: the pipeline validates the file."""
    from astropy.io import fits

    from refsmith.synthetic.ramps import write_raw_exposure
    from refsmith.synthetic.references import write_reference_files
    from run_dataset import SHAPE, exposure_name

    links = tmp_path / "links"
    links.mkdir()
    for index in range(4):
        raw = write_raw_exposure(tmp_path / "raw" / exposure_name(index), shape=SHAPE,
                                 mjd=60000.0 + 0.1 * index, seed=index + 1)
        (links / f"NRCA1_DARK_{index:03d}_uncal.fits").symlink_to(raw)
    references = write_reference_files(tmp_path / "refs", shape=SHAPE)
    config = tmp_path / "mkrefs.cfg"
    config.write_text(LEGACY_RUN.format(references="\n".join(
        f"   {reftype}: {path}" for reftype, path in references.items())))
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "out" / "test1" / "run000"

    assert main(["plan", "mkrefs.cfg", "links", "--format", "json"]) == 0
    plan, _ = plan_json(capsys)
    assert Path(plan["run_dir"]) == run_dir and recipes_of(plan) == {
        "rdnoise_nircam": (2, {"readnoise"})}
    argv = ["run", "mkrefs.cfg", "links", "--offline", "--format", "json", "--progress",
            "none", "--workers", "2", "--no-report"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert Path(first["run_dir"]) == run_dir  # the planned run, not run001
    assert first["counts"] == {**first["counts"], "failed": 0} and first["retried"] == 0
    assert first["executed"] == first["jobs"] == 4 + 2 + 1  # calibrations, pairs, combine
    (final,) = (run_dir / "final").rglob("*.fits")
    assert fits.getheader(final)["REFTYPE"].strip().upper() == "READNOISE"
    logs = "".join(p.read_text() for p in (run_dir / "logs").glob("*.log"))
    assert "pipeline validation passed" in logs
    assert main(argv) == 0  # resumed: nothing to do again
    again = json.loads(capsys.readouterr().out)
    assert Path(again["run_dir"]) == run_dir and again["executed"] == 0
    assert sorted(p.name for p in run_dir.parent.glob("run*")) == ["run000"]

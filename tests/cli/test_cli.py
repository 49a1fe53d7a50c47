"""The command line end to end on header-only synthetic files (no pipeline runs)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from pathlib import Path

import pytest

from refsmith.cli import main
from refsmith.cli.commands import status_rows
from refsmith.cli.explain import membership
from refsmith.config import load_config
from refsmith.model import Group, Member
from refsmith.synthetic.headers import write_bad_file, write_exposure

CONFIG = """\
instrument: nircam
inputs: {paths: [raw]}
max_days: {DD: 2.0}
output: {root: out}
recipes:
  readnoise: {imtypes: DD, steps: dq_init-}
  superbias: {imtypes: D+, steps: dq_init-}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, mjd in enumerate([60000.0, 60000.5, 60001.0, 60010.0]):
        write_exposure(raw / f"jw0000100{i}001_01101_00001_nrca1_uncal.fits", mjd=mjd)
    write_exposure(raw / "jw00002001001_01101_00001_nrca1_uncal.fits", exp_type="NRC_FLAT",
                   mjd=60000.2)
    write_bad_file(raw / "jw00003001001_01101_00001_nrca1_uncal.fits", "not_fits")
    (tmp_path / "refsmith.yaml").write_text(CONFIG)
    return tmp_path


def test_init_writes_a_valid_config_and_refuses_to_overwrite(tmp_path, capsys):
    path = tmp_path / "refsmith.yaml"
    assert main(["init", str(path)]) == 0
    config = load_config(path)
    assert config.instrument == "NIRCAM"
    assert config.inputs.paths == ["raw/"]
    assert config.base_dir == tmp_path
    recipes = {name: (r.reftype, r.imtypes, r.steps, r.save_steps, r.plugin)
               for name, r in config.recipes.items()}
    assert recipes == {
        "readnoise": ("readnoise", "DD", ["dq_init-"], [], None),
        "superbias": ("superbias", "D+", ["dq_init-"], [], None),
        "dark": ("dark", "D+", ["linearity-"], ["dq_init"], None),
        "gain": ("gain", "DDFF", ["linearity-"], [], None),
        "bad_pixel_mask": ("mask", "DF+", ["linearity-"], [], "bad_pixel_mask"),
    }
    assert config.recipes["readnoise"].params == {"sigma_clip": 3.0}
    assert config.recipes["superbias"].min_size == 2
    assert config.recipes["dark"].memory == "4GiB"
    assert config.max_days == {"DD": 2.0, "FF": 2.0, "DDFF": 10.0}
    before = path.read_bytes()
    assert main(["init", str(path)]) == 2
    assert "exist" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_scan_json_lists_every_file_with_reasons(project, capsys):
    assert main(["scan", str(project / "raw"), "--format", "json", "--no-cache"]) == 0
    captured = capsys.readouterr()
    records = json.loads(captured.out)["exposures"]
    assert len(records) == 6
    bad = [r for r in records if not r["usable"]]
    assert len(bad) == 1 and bad[0]["reason"]
    imtypes = sorted(r["imtype"] or "-" for r in records if r["usable"])
    assert imtypes == ["dark", "dark", "dark", "dark", "flat"]
    assert "5 usable" in captured.err and "1 unusable" in captured.err


def test_plan_writes_run_directory_and_prints_summary(project, capsys):
    assert main(["plan", str(project / "refsmith.yaml")]) == 0
    text = capsys.readouterr().out
    assert "readnoise" in text and "nothing was executed" in text
    # counts right-aligned under their headings; nothing trails a line (output is piped)
    lines = text.splitlines()
    assert [line for line in lines if line != line.rstrip()] == []
    heading = next(line for line in lines if line.startswith("recipe") and "left out" in line)
    row = next(line for line in lines if line.startswith("readnoise "))
    assert len(row) == len(heading) and row.split()[-2:] == ["1", "2"]
    run_dir = project / "out" / "refsmith"
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["schema"] == "refsmith.plan/1"
    for name in ("catalog.ecsv", "groups.ecsv", "leftovers.ecsv"):
        assert (run_dir / name).is_file()
    readnoise = [g for g in plan["groups"] if g["recipe"] == "readnoise"]
    # darks at 0, 0.5 pair; 1.0 and 10.0 are 9 d apart > 2 d: both left out
    assert [[m["role"] for m in g["members"]] for g in readnoise] == [["D1", "D2"]]
    left = {Path(x["path"]).name for x in plan["leftovers"] if x["recipe"] == "readnoise"}
    assert left == {"jw00001002001_01101_00001_nrca1_uncal.fits",
                    "jw00001003001_01101_00001_nrca1_uncal.fits"}
    superbias = [g for g in plan["groups"] if g["recipe"] == "superbias"]
    assert len(superbias) == 1 and len(superbias[0]["members"]) == 4
    digest = hashlib.sha256((project / "refsmith.yaml").read_bytes()).hexdigest()[:16]
    for job in plan["reffile_jobs"] + plan["combine_jobs"]:
        assert job["config"] == f"{project / 'refsmith.yaml'} sha256:{digest}"


def test_plan_json_format_is_the_plan(project, capsys):
    assert main(["plan", str(project / "refsmith.yaml"), "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["schema"] == "refsmith.plan/1"
    assert {"exposures", "groups", "leftovers", "calibration_jobs"} <= set(plan)


def test_bad_config_is_a_clear_error_not_a_traceback(project, capsys):
    bad = project / "bad.yaml"
    bad.write_text(CONFIG.replace("imtypes: DD", "imtype: DD"))
    assert main(["plan", str(bad)]) == 2
    message = capsys.readouterr().err
    assert "imtypes" in message and "Traceback" not in message


def test_an_alias_bomb_in_the_config_is_a_quick_clear_error(project, capsys):
    bomb = project / "bomb.yaml"
    laughs = [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    bomb.write_text(CONFIG + "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                    + "\n".join(laughs) + "\n")
    assert main(["plan", str(bomb)]) == 2  # 9^9 values: used to hang
    message = capsys.readouterr().err
    assert f"{bomb}:13: YAML error: alias *l4: aliases expand to more than 100,000" in message
    assert "Traceback" not in message


def test_config_list_files_are_read_relative_to_the_config(project, capsys, monkeypatch):
    (project / "lists").mkdir()
    darks = sorted((project / "raw").glob("jw00001*_uncal.fits"))
    (project / "lists" / "darks.txt").write_text(
        "".join(f"../raw/{path.name}\n" for path in darks))
    config = project / "listed.yaml"
    config.write_text(CONFIG.replace("paths: [raw]", "paths: ['@lists/darks.txt']"))
    (project / "elsewhere").mkdir()
    monkeypatch.chdir(project / "elsewhere")
    assert main(["scan", "-c", str(config), "--format", "json", "--no-cache"]) == 0
    records = json.loads(capsys.readouterr().out)["exposures"]
    assert sorted(r["path"] for r in records) == [str(path) for path in darks]
    assert main(["plan", str(config)]) == 0
    plan = json.loads((project / "out" / "listed" / "plan.json").read_text())
    assert sorted(e["path"] for e in plan["exposures"]) == [str(path) for path in darks]
    superbias = [g for g in plan["groups"] if g["recipe"] == "superbias"]
    assert [len(g["members"]) for g in superbias] == [4]
    # command-line inputs are relative to the current directory, not to the config
    flat = sorted((project / "raw").glob("jw00002*_uncal.fits"))[0]
    (project / "elsewhere" / "mine").mkdir()
    os.link(flat, project / "elsewhere" / "mine" / flat.name)
    capsys.readouterr()
    assert main(["scan", "-c", str(config), "mine", "--format", "json", "--no-cache"]) == 0
    records = json.loads(capsys.readouterr().out)["exposures"]
    assert str(project / "elsewhere" / "mine" / flat.name) in {r["path"] for r in records}


def test_steps_prints_order_and_rejects_unknown_instrument(capsys):
    assert main(["steps", "miri", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [r["step"] for r in rows]
    assert names.index("dq_init") < names.index("emicorr") < names.index("ramp_fit")
    assert rows[names.index("dark_current")]["keyword"] == "S_DARK"
    assert main(["steps", "hubble"]) == 2
    assert "unknown instrument" in capsys.readouterr().err


def test_explain_gives_group_or_reason(project, capsys):
    config = str(project / "refsmith.yaml")
    assert main(["explain", config, "jw00001000001_01101_00001_nrca1_uncal.fits"]) == 0
    text = capsys.readouterr().out
    assert "readnoise-" in text and "as D1" in text
    assert main(["explain", config, "jw00001003001_01101_00001_nrca1_uncal.fits"]) == 0
    assert "left out" in capsys.readouterr().out
    assert main(["explain", config, "jw00003001001_01101_00001_nrca1_uncal.fits"]) == 0
    text = capsys.readouterr().out
    assert "unusable: not a FITS file" in text and "none can use it" in text
    assert main(["explain", config, "nonexistent_uncal.fits"]) == 2
    assert main(["plan", config]) == 0
    capsys.readouterr()
    run_dir = str(project / "out" / "refsmith")  # a run directory instead of the config
    assert main(["explain", run_dir, "jw00001000001_01101_00001_nrca1_uncal.fits"]) == 0
    assert "as D1" in capsys.readouterr().out


def test_every_parsed_command_runs_a_function(capsys):
    from refsmith.cli.commands import COMMANDS
    from refsmith.cli.parser import EXAMPLES, build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    assert set(sub.choices) == set(COMMANDS) == set(EXAMPLES)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("refsmith ")


def test_show_commands_are_shell_quoted(tmp_path, capsys):
    project = tmp_path / "my data"  # a space: the commands must still paste into a shell
    (project / "raw").mkdir(parents=True)
    for i, mjd in enumerate([60000.0, 60000.5]):
        write_exposure(project / "raw" / f"jw0000100{i}001_01101_00001_nrca1_uncal.fits",
                       mjd=mjd)
    (project / "refsmith.yaml").write_text(CONFIG)
    assert main(["plan", str(project / "refsmith.yaml"), "--show-commands"]) == 0
    printed = [shlex.split(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("strun ")]
    plan = json.loads((project / "out" / "refsmith" / "plan.json").read_text())
    assert printed == [job["argv"] for job in plan["calibration_jobs"]]
    assert len(printed) == 2 and " " in printed[0][2]


def test_status_rows_keep_unfinished_jobs_and_the_last_finished():
    jobs = [{"id": f"j{i}", "state": state, "ended": ended} for i, (state, ended) in
            enumerate([("done", 5.0), ("pending", None), ("failed", 3.0), ("done", 9.0),
                       ("cached", 7.0), ("running", None), ("blocked", None)])]
    assert [j["id"] for j in status_rows(jobs, 2)] == ["j2", "j3", "j4", "j5", "j6"]
    assert [j["id"] for j in status_rows(jobs, 0)] == ["j2", "j5", "j6"]
    assert len(status_rows(jobs, 100)) == 6  # every job but the pending one


def test_explain_names_a_few_partners_of_a_big_group():
    members = tuple(Member(f"D{i}", f"/raw/d{i}_uncal.fits") for i in range(1, 11))
    group = Group("superbias-NRCA1-001", "superbias", "superbias", "D+",
                  (("DETECTOR", "NRCA1"),), members, (0.0, 1.0))
    assert membership(group, "/raw/d3_uncal.fits") == (
        "as D3 with D1 d1_uncal.fits, D2 d2_uncal.fits, D4 d4_uncal.fits, D5 d5_uncal.fits "
        "and 5 more (10 members, all in groups.ecsv)")
    pair = Group("rn-NRCA1-001", "rn", "readnoise", "DD", (), members[:2], (0.0, 1.0))
    assert membership(pair, "/raw/d2_uncal.fits") == "as D2 with D1 d1_uncal.fits"
    alone = Group("bpm-NRCA1-001", "bpm", "mask", "D", (), members[:1], (0.0, 0.0))
    assert membership(alone, "/raw/d1_uncal.fits") == "as D1"


@pytest.mark.slow
def test_demo_runs_the_whole_chain_then_reuses_everything(tmp_path, capsys):
    """`refsmith demo`: real pipeline, valid final files near the injected truth, a report;
    a second run re-writes no data and executes no job."""
    from refsmith.cli.demo import compare_with_truth
    from refsmith.plugins.validate import check_datamodel
    from refsmith.running import status

    demo = tmp_path / "demo"
    assert main(["demo", str(demo)]) == 0
    first = capsys.readouterr().out
    run_dir = demo / "out" / "refsmith"
    assert "unusable: jw01234999001_01101_00001_nrca1_uncal.fits: truncated" in first
    assert "56 jobs executed now, 0 failed" in first
    plan = json.loads((run_dir / "plan.json").read_text())
    assert len(plan["groups"]) == 18 and len(plan["leftovers"]) == 6
    # the partly processed exposure starts from its real dq_init product
    partly = "jw01234001005_01101_00001_nrca1_uncal.fits"
    product = demo / "products" / "jw01234001005_01101_00001_nrca1_dq_init.fits"
    assert [j["start_file"] for j in plan["calibration_jobs"]
            if j["exposure"].endswith(partly)] == [str(product)]
    jobs = status(run_dir)["jobs"]
    kinds = [j["kind"] for j in jobs if j["state"] == "done"]
    assert [kinds.count(k) for k in ("calibration", "reffile", "combine")] == [28, 18, 10]

    finals = sorted((run_dir / "final").rglob("*.fits"))
    assert len(finals) == 10  # 5 recipes x 2 detectors
    assert not (run_dir / "rejected").exists()
    report = (run_dir / "report.html").read_text()
    for path in finals:
        reftype = {"bad_pixel_mask": "mask"}.get(path.parent.name, path.parent.name)
        check_datamodel(path, reftype)  # raises if invalid
        setup = path.stem.removeprefix(f"{path.parent.name}_")
        assert "pipeline validation passed" in (
            run_dir / "logs" / f"combine-{path.parent.name}-{setup}.log").read_text()
        assert path.name in report
    for detector, found in compare_with_truth(run_dir / "final", demo / "refs").items():
        assert abs(found["readnoise"] - 1) < 0.05, (detector, found)
        assert abs(found["gain"] - 1) < 0.05, (detector, found)
        assert abs(found["dark_rate"] / 4.0 - 1) < 0.05, (detector, found)
        assert found["superbias"] < 1.0, (detector, found)
        assert found["bad_found"] >= 0.95 * found["bad_injected"], (detector, found)
        assert found["bad_false"] <= 2, (detector, found)

    assert main(["explain", str(demo / "refsmith.yaml"), partly]) == 0
    assert f"already at the required state: {product}" in capsys.readouterr().out

    data = [p for d in ("raw", "refs", "products", "out/calibrated", "out/refsmith/reffiles",
                        "out/refsmith/final") for p in (demo / d).rglob("*.fits")]
    mtimes = {path: path.stat().st_mtime_ns for path in data}
    attempts = sum(j["attempts"] for j in status(run_dir)["jobs"])
    assert main(["demo", str(demo)]) == 0
    second = capsys.readouterr().out
    assert "reusing the demo data set" in second and "0 jobs executed now" in second
    assert status(run_dir)["last_run"]["executed"] == 0
    assert sum(j["attempts"] for j in status(run_dir)["jobs"]) == attempts
    assert {path: path.stat().st_mtime_ns for path in data} == mtimes
    # the report of the re-run still times the run that did the work, and each final
    # file is compared with the synthetic reference the demo config names
    report = (run_dir / "report.html").read_text()
    assert "executed 56 jobs (0 failed)" in report
    assert "; 1 later run executed 0 jobs" in report
    verdicts = re.search(r'<table class="verdicts">(.*?)</table>', report, re.S).group(1)
    assert verdicts.count('<span class="note">(config)</span>') == 10


def test_explain_shows_start_file_and_rejected_products(project, capsys):
    """A product in a search dir with the right steps is used; one with too many is rejected."""
    products = project / "products"
    products.mkdir()
    base = "jw00001000001_01101_00001_nrca1"
    good = write_exposure(products / f"{base}_dq_init.fits", mjd=60000.0,
                          steps={"group_scale": "SKIPPED", "dq_init": "COMPLETE"})
    too_far = write_exposure(products / f"{base}_superbias.fits", mjd=60000.0,
                             steps={"group_scale": "SKIPPED", "dq_init": "COMPLETE",
                                    "saturation": "COMPLETE", "superbias": "COMPLETE"})
    config = project / "refsmith.yaml"
    config.write_text(CONFIG + "pipeline: {search_dirs: [products]}\n")
    assert main(["explain", str(config), f"{base}_uncal.fits"]) == 0
    text = capsys.readouterr().out
    assert f"already at the required state: {good}" in text
    assert f"rejected {too_far}:" in text and "saturation" in text
    assert main(["plan", str(config), "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    started = {j["exposure"] for j in plan["calibration_jobs"]}
    assert str(project / "raw" / f"{base}_uncal.fits") not in started


def test_plan_warns_about_an_unknown_plugin_but_still_plans(project, capsys):
    config = project / "refsmith.yaml"
    config.write_text(CONFIG.replace("{imtypes: D+, steps: dq_init-}",
                                     "{imtypes: D+, steps: dq_init-, plugin: badpix_from_flats}"))
    assert main(["plan", str(config), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "plug-in 'badpix_from_flats' is not installed" in captured.err
    plan = json.loads(captured.out)
    assert any("badpix_from_flats" in w for w in plan["warnings"])
    assert [g for g in plan["groups"] if g["recipe"] == "superbias"]


def test_run_params_are_parsed_as_yaml_and_bad_ones_rejected(capsys):
    from refsmith.cli.commands import parse_params

    assert parse_params(["readnoise.sigma_clip=4", "author=Me", "flag=true"]) == {
        "readnoise.sigma_clip": 4, "author": "Me", "flag": True}
    assert main(["run", "nonexistent.yaml", "--param", "novalue"]) == 2
    assert "expected RECIPE.KEY=VALUE" in capsys.readouterr().err


def test_inputs_that_match_nothing_are_an_error(project, capsys):
    assert main(["scan", str(project / "no_such_dir"), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "no_such_dir: no such file, or nothing matched" in err
    assert "no input files found" in err
    config = project / "empty.yaml"
    config.write_text(CONFIG.replace("paths: [raw]", "paths: [nothing_here]"))
    assert main(["plan", str(config)]) == 2
    assert "no input files found" in capsys.readouterr().err


def test_bad_max_memory_is_an_error_before_anything_runs(project, capsys):
    assert main(["run", str(project / "refsmith.yaml"), "--max-memory", "lots"]) == 2
    assert "max_memory must look like '4GiB'" in capsys.readouterr().err
    assert main(["run", str(project / "refsmith.yaml"), "--recycle-memory", "4 GiBs"]) == 2
    assert "recycle_memory must look like '4GiB'" in capsys.readouterr().err

"""One command-line convention (issue 15, items 11-16): `--format` on every command (text or
json; the old `table` still accepted), errors as JSON under `--format json`, exit codes,
`status`/`report` of a config, `plan --show-commands` as a script, where `scan` keeps its
header cache, `demo --workers`."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import pytest

from refsmith.cli import main
from refsmith.cli.commands import COMMANDS
from refsmith.cli.parser import build_parser
from refsmith.execute.store import JobStore
from refsmith.synthetic.headers import write_bad_file, write_exposure

CONFIG = """\
inputs: {paths: [raw]}
max_days: {DD: 2.0}
output: {root: out}
recipes:
  readnoise: {imtypes: DD, steps: dq_init-}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for i, mjd in enumerate([60000.0, 60000.5]):
        write_exposure(tmp_path / "raw" / f"jw0000100{i}001_01101_00001_nrca1_uncal.fits",
                       mjd=mjd)
    (tmp_path / "refsmith.yaml").write_text(CONFIG)
    return tmp_path


def subparsers() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    return dict(sub.choices)


def format_action(parser: argparse.ArgumentParser) -> argparse.Action:
    (action,) = [a for a in parser._actions if "--format" in a.option_strings]
    return action


# ---------------------------------------------------------------- 11: --format, JSON errors


def test_every_command_has_format_text_and_json_with_text_the_default():
    parsers = subparsers()
    assert set(parsers) == set(COMMANDS)
    for name, parser in parsers.items():
        action = format_action(parser)
        assert action.default == "text", name
        assert {"text", "json"} <= set(action.choices), name
    assert set(format_action(parsers["scan"]).choices) == {"text", "json", "ecsv"}


def test_table_is_still_accepted_where_it_was_the_name(project, capsys):
    assert main(["steps", "nircam", "--format", "table"]) == 0
    table = capsys.readouterr().out
    assert main(["steps", "nircam", "--format", "text"]) == 0
    assert capsys.readouterr().out == table
    assert main(["steps", "nircam"]) == 0
    assert capsys.readouterr().out == table and "dq_init" in table
    raw = str(project / "raw")
    assert main(["scan", raw, "--format", "table", "--no-cache"]) == 0
    scanned = capsys.readouterr().out
    assert main(["scan", raw, "--no-cache"]) == 0
    assert capsys.readouterr().out == scanned


def test_errors_under_format_json_are_json_on_stderr_with_the_exit_code(project, capsys):
    assert main(["plan", str(project / "missing.yaml"), "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    error = json.loads(captured.err)
    assert error["exit_code"] == 2 and "missing.yaml" in error["error"]
    assert main(["steps", "hubble", "--format=json"]) == 2
    error = json.loads(capsys.readouterr().err)
    assert error == {"error": error["error"], "exit_code": 2}
    assert "unknown instrument" in error["error"]
    # a usage error too (argparse's), with its usual exit code
    with pytest.raises(SystemExit) as exit_:
        main(["scan", "--format", "json", "--no-such-option"])
    assert exit_.value.code == 2
    error = json.loads(capsys.readouterr().err)
    assert error["exit_code"] == 2 and "--no-such-option" in error["error"]
    # without --format json: the usual plain line
    assert main(["steps", "hubble"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_init_report_and_explain_have_json_output(project, capsys):
    config = project / "new.yaml"
    assert main(["init", str(config), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"config": str(config)}
    name = "jw00001000001_01101_00001_nrca1_uncal.fits"
    assert main(["explain", str(project / "refsmith.yaml"), name, "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["path"] == str(project / "raw" / name) and record["usable"]
    assert record["facts"]["detector"] == "NRCA1"
    (readnoise,) = record["recipes"]
    assert readnoise["recipe"] == "readnoise" and readnoise["left_out"] == []
    assert [m["role"] for m in readnoise["groups"][0]["members"]] == ["D1", "D2"]
    assert readnoise["start"]["steps_to_run"] == ["group_scale", "dq_init"]


# ---------------------------------------------------------------- 12, 13: exit codes, status


def failed_run(project: Path) -> Path:
    """A planned run directory whose store holds a failed job (what a run leaves)."""
    assert main(["plan", str(project / "refsmith.yaml")]) == 0
    run_dir = project / "out" / "refsmith"
    with JobStore(run_dir / "store.sqlite") as store:
        store.sync_plan([("cal-a", "calibration", (), ""), ("reffile-b", "reffile", ("cal-a",),
                                                            "")])
        store.start_attempt("cal-a", "local-1:123")
        store.finish_attempt("cal-a", "failed", error="bad data")
    return run_dir


def test_status_exits_1_when_a_job_failed_and_finds_the_run_of_a_config(project, capsys):
    run_dir = failed_run(project)
    capsys.readouterr()
    config = str(project / "refsmith.yaml")
    assert main(["status", str(run_dir)]) == 1  # was 0
    by_dir = capsys.readouterr().out
    assert "failed cal-a: bad data" in by_dir
    assert main(["status", config]) == 1  # the config names its run directory, as for run
    assert capsys.readouterr().out == by_dir
    assert main(["status", config, "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["run_dir"] == str(run_dir)
    assert main(["report", config, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"report": str(run_dir / "report.html")}
    assert (run_dir / "report.html").is_file()


def test_status_of_a_config_that_was_never_run_says_so(project, capsys):
    assert main(["status", str(project / "refsmith.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"its run directory {project / 'out' / 'refsmith'} does not exist yet" in err
    assert main(["report", str(project / "nothing.yaml")]) == 2
    assert "no such run directory or config file" in capsys.readouterr().err


def test_a_plan_with_nothing_to_make_warns_and_exits_1(project, capsys):
    config = str(project / "refsmith.yaml")
    far = project / "raw" / "jw00001001001_01101_00001_nrca1_uncal.fits"
    write_exposure(far, mjd=60010.0)  # no partner within 2 days: no group
    assert main(["plan", config]) == 1  # was 0, silently
    err = capsys.readouterr().err
    assert "warning: no recipe formed a group from the 2 usable input files" in err
    assert main(["plan", config, "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["groups"] == []
    assert "nothing to make" in captured.err
    assert main(["run", config, "--dry-run"]) == 1
    assert "no recipe formed a group" in capsys.readouterr().err
    for path in (project / "raw").iterdir():
        write_bad_file(path, "not_fits")
    assert main(["plan", config]) == 1
    assert "none of the 2 input files is usable" in capsys.readouterr().err


# ---------------------------------------------------------------- 14: --show-commands


def test_show_commands_prints_only_the_commands_on_stdout(project, capsys):
    assert main(["plan", str(project / "refsmith.yaml"), "--show-commands"]) == 0
    captured = capsys.readouterr()
    plan = json.loads((project / "out" / "refsmith" / "plan.json").read_text())
    assert [shlex.split(line) for line in captured.out.splitlines()] == [
        job["argv"] for job in plan["calibration_jobs"]]
    assert len(plan["calibration_jobs"]) == 2
    assert "catalog: 2 usable" in captured.err and "plan written to" in captured.err
    assert main(["plan", str(project / "refsmith.yaml"), "--show-commands",
                 "--format", "json"]) == 2
    assert "choose one" in json.loads(capsys.readouterr().err)["error"]


# ---------------------------------------------------------------- 15: scan's header cache


def test_scan_without_a_config_keeps_its_cache_in_the_users_cache_dir(
        project, capsys, monkeypatch):
    cache_home = project / "cache_home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    (project / "cwd").mkdir()
    monkeypatch.chdir(project / "cwd")
    assert main(["scan", str(project / "raw")]) == 0
    assert list((project / "cwd").iterdir()) == []  # was: ./refsmith_out/catalog.sqlite
    cache = cache_home / "refsmith" / "catalog.sqlite"
    assert cache.is_file()
    assert f"header cache: {cache}" in capsys.readouterr().err
    # with a config: the config's output root, as plan uses
    assert main(["scan", "-c", str(project / "refsmith.yaml")]) == 0
    assert f"header cache: {project / 'out' / 'catalog.sqlite'}" in capsys.readouterr().err


# ---------------------------------------------------------------- 16: demo --workers


def test_demo_passes_workers_to_the_run(tmp_path, monkeypatch):
    seen = {}

    def fake_run_demo(directory, console, *, workers=None, as_json=False):
        seen.update(directory=directory, workers=workers, as_json=as_json)
        return 0

    monkeypatch.setattr("refsmith.cli.demo.run_demo", fake_run_demo)
    assert main(["demo", str(tmp_path / "d"), "--workers", "3", "--format", "json"]) == 0
    assert seen == {"directory": tmp_path / "d", "workers": 3, "as_json": True}
    assert main(["demo", str(tmp_path / "d")]) == 0
    assert seen["workers"] is None and not seen["as_json"]

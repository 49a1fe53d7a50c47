"""Atomic writing: final names only for complete files, ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from refsmith.util.files import atomic_write_text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_written_file_has_the_permissions_of_a_plain_open(tmp_path, umask_022):
    target = tmp_path / "plan.json"
    atomic_write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "plan.json"
    target.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "\udcff")  # a lone surrogate cannot be encoded
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_run_directory_files_are_readable_by_others(tmp_path, umask_022):
    from refsmith.cli import main
    from refsmith.synthetic.headers import write_exposure

    write_exposure(tmp_path / "raw" / "jw00001001001_01101_00001_nrca1_uncal.fits")
    config = tmp_path / "refsmith.yaml"
    config.write_text("inputs: {paths: [raw]}\noutput: {root: out}\n"
                      "recipes: {superbias: {imtypes: D+}}\n")
    assert main(["plan", str(config), "--no-cache"]) == 0
    run_dir = tmp_path / "out" / "refsmith"
    for name in ("plan.json", "catalog.ecsv", "groups.ecsv", "leftovers.ecsv"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o644, name

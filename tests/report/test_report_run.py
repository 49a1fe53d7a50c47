"""The report of real runs (calwebb_detector1 on tiny synthetic darks, off-line): run
history, the run that did the work, comparison with the previous run, dark cards."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from astropy.io import fits

from refsmith.config import load_config
from refsmith.execute.store import JobStore
from refsmith.report import build_report
from refsmith.report.images import read_image
from refsmith.running import RunOptions, run
from run_dataset import make_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("history")
    config = load_config(make_dataset(root, 4))
    first = run(config, options=RunOptions(progress="none"))
    again = run(config, options=RunOptions(progress="none"))  # nothing left to do
    second_dir = root / "out" / "second"
    second = run(config, options=RunOptions(progress="none", run_dir=str(second_dir),
                                            force_redo="reffiles"))
    return {"root": root, "first": first, "again": again, "second": second,
            "run_dir": first.run_dir, "second_dir": second_dir}


def test_every_run_is_recorded(runs):
    assert runs["first"].exit_code == runs["again"].exit_code == 0
    with JobStore(runs["run_dir"] / "store.sqlite", readonly=True) as store:
        history = store.runs()
    assert len(history) == 2
    worked, idle = history
    assert worked["executed"] == runs["first"].executed > 0
    assert idle["executed"] == runs["again"].executed == 0
    assert worked["failed"] == idle["failed"] == 0
    assert worked["started"] < worked["ended"] <= idle["started"] < idle["ended"]
    # the run's own time; the summary's also counts writing the report afterwards
    assert 0 < worked["seconds"] <= runs["first"].seconds
    assert worked["seconds"] <= worked["ended"] - worked["started"] + 0.01


def test_summary_shows_the_run_that_did_the_work(runs):
    text = (runs["run_dir"] / "report.html").read_text()  # written by the re-run
    note = re.search(r"the run that did the work started [^,]+, executed (\d+) jobs "
                     r"\((\d+) failed\) in ([^;]+); 1 later run executed 0 jobs", text)
    assert note, text[text.index("jobs planned"):][:600]
    assert int(note.group(1)) == runs["first"].executed
    assert "wall time of the last run" not in text
    history = re.search(r'<table class="history">(.*?)</table>', text, re.S).group(1)
    rows = re.findall(r"<tr><td>(\d+)</td>.*?<td>(\d+)</td><td>(\d+)</td><td><span "
                      r'class="state \w+">([^<]+)</span>', history, re.S)
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("2", "0", "nothing to do"), ("1", str(runs["first"].executed), "ok")]


def test_the_previous_run_is_the_baseline(runs):
    assert runs["second"].exit_code == 0 and runs["second"].executed > 0
    text = (runs["second_dir"] / "report.html").read_text()
    verdicts = re.search(r'<table class="verdicts">(.*?)</table>', text, re.S).group(1)
    finals = sorted((runs["second_dir"] / "final").glob("*/*.fits"))
    assert len(finals) == 2
    for path in finals:
        row = re.search(rf"{re.escape(path.name)}</a></td><td>(.*?)</td><td>(.*?)</td>",
                        verdicts, re.S)
        assert row, path.name
        assert f"(previous run {runs['run_dir'].name})" in row.group(1)
        assert "identical" in row.group(2)  # the same inputs, the same plug-ins


def test_a_changed_file_is_caught(runs):
    run_dir = runs["root"] / "out" / "changed"  # beside the first run: its baseline
    shutil.copytree(runs["second_dir"], run_dir)
    path = next((run_dir / "final").glob("readnoise/*.fits"))
    with fits.open(path, mode="update") as hdus:
        hdus["SCI"].data[10:26, 10:26] *= 3.0  # 256 of 4096 pixels
    text = build_report(run_dir).read_text()
    row = re.search(rf"{re.escape(path.name)}</a></td><td>(.*?)</td><td>(.*?)</td>", text,
                    re.S)
    assert 'class="state blocked">changed</span>' in row.group(2)
    fraction = float(re.search(r"([\d.]+)% of pixels changed", row.group(2)).group(1))
    assert fraction == pytest.approx(100 * 256 / 4096, abs=0.1)
    assert "(previous run second)" in row.group(1)  # the newest older copy
    shutil.rmtree(run_dir)


def test_dark_card_mean_rate_and_signal_per_group(runs):
    path = next((runs["run_dir"] / "final").glob("dark/*.fits"))
    image = read_image(path)
    cube = fits.getdata(path, "SCI")
    assert image.kind == "cube" and len(image.group_means) == cube.shape[0]
    np.testing.assert_allclose(image.group_means, np.nanmean(cube, axis=(1, 2)), rtol=1e-5)
    slope = np.polyfit(np.arange(cube.shape[0]), cube.reshape(cube.shape[0], -1), 1)[0]
    np.testing.assert_allclose(image.data.ravel(), slope, rtol=1e-4, atol=1e-6)
    text = (runs["run_dir"] / "report.html").read_text()
    card = text[text.index(f">{path.name}</a></h3>"):]
    card = card[:card.index('<div class="reffile">') if '<div class="reffile">' in card
                else None]
    assert "<td>array</td><td>mean rate (DN/group)</td>" in card
    assert f"<td>groups</td><td>{cube.shape[0]}</td>" in card

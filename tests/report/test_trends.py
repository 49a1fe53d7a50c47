"""Trends of the individual files: statistic per file, outliers per recipe and partition."""

from __future__ import annotations

import re

import numpy as np
import pytest
from astropy.io import fits

from refsmith.report.trends import collect_points, file_statistic, mark_outliers, trends_section

IMG = re.compile(r'<img [^>]*src="data:image/png;base64,')


def write(path, data, name="SCI", **header):
    primary = fits.PrimaryHDU()
    primary.header.update({"REFTYPE": "READNOISE", "DETECTOR": "NRCA1", **header})
    fits.HDUList([primary, fits.ImageHDU(data, name=name)]).writeto(path)
    return str(path)


def plan_of(tmp_path, levels, *, partition="NRCA1"):
    """A plan whose readnoise individual files have the given median levels, a day apart."""
    rng = np.random.default_rng(len(levels))
    exposures, groups, jobs = [], [], []
    for i, level in enumerate(levels):
        raw = str(tmp_path / f"{partition}_raw{i}.fits")
        exposures.append({"path": raw, "mjd": 60000.0 + i})
        group = f"readnoise-{partition}-{i:03d}"
        groups.append({"id": group, "recipe": "readnoise",
                       "partition": {"DETECTOR": partition}})
        data = rng.normal(level, 0.5, (32, 32)).astype(np.float32)
        output = write(tmp_path / f"rn-{partition}-{i}.fits", data)
        jobs.append({"recipe": "readnoise", "group": group, "output": output,
                     "inputs": [{"role": "D1", "exposure": raw}]})
    return {"exposures": exposures, "groups": groups, "reffile_jobs": jobs}


def test_statistics_of_images_cubes_and_masks(tmp_path):
    image = np.full((64, 64), 7.0, np.float32)
    image[:4] = 1000.0  # reference rows (SUBSTRT2 = 1): left out
    assert file_statistic(write(tmp_path / "i.fits", image, SUBSTRT1=1, SUBSTRT2=1)) == (
        7.0, "median readnoise")
    cube = (np.arange(6, dtype=np.float32)[:, None, None] * 2.5) * np.ones((6, 16, 16),
                                                                          np.float32)
    assert file_statistic(write(tmp_path / "c.fits", cube)) == (
        pytest.approx(2.5), "median rate (DN/group)")
    dq = np.zeros((64, 64), np.uint32)
    dq[0, :] = 1  # a reference row
    dq[10, 10:15] = 1024
    assert file_statistic(write(tmp_path / "m.fits", dq, name="DQ", SUBSTRT1=1,
                                SUBSTRT2=1)) == (5.0, "flagged science pixels")


def test_the_bad_file_is_the_outlier(tmp_path):
    plan = plan_of(tmp_path, [10, 10, 10, 10, 25, 10])
    second = plan_of(tmp_path, [10, 30], partition="NRCB1")  # two files: no judgement
    for key in plan:
        plan[key] += second[key]
    points, problems = collect_points(plan)
    assert problems == [] and len(points) == 8
    mark_outliers(points)
    assert [p.path.rsplit("/", 1)[1] for p in points if p.outlier] == ["rn-NRCA1-4.fits"]
    assert {p.partition for p in points} == {"NRCA1", "NRCB1"}
    assert [p.mjd for p in points[:3]] == [60000.0, 60001.0, 60002.0]
    text = trends_section(plan, tmp_path)
    assert "<h3>readnoise: 8 files, 1 outliers</h3>" in text
    table = re.search(r'<table class="outliers">(.*?)</table>', text, re.S).group(1)
    assert "rn-NRCA1-4.fits" in table and table.count("<tr><td>") == 1
    assert len(IMG.findall(text)) == 1


def test_unreadable_and_missing_files(tmp_path):
    plan = plan_of(tmp_path, [10, 11, 12])
    (tmp_path / "rn-NRCA1-1.fits").write_bytes(b"broken")
    (tmp_path / "rn-NRCA1-2.fits").unlink()  # not made (yet): not a point
    points, problems = collect_points(plan)
    assert len(points) == 1 and len(problems) == 1 and "rn-NRCA1-1.fits" in problems[0]
    assert "cannot be read (1)" in trends_section(plan, tmp_path)

"""Trends: each individual reference file's summary statistic against the time of its
inputs, per recipe and partition, with the outliers marked.

The statistic is cheap to read: the median of the science pixels of an image, the median
rate (last group - first group) / (groups - 1) of a cube (two planes read), the flagged
science pixels of a mask. A file is an outlier when it is further than
:data:`OUTLIER_SIGMA` robust sigma (1.4826 MAD, at least :data:`MIN_RELATIVE` of the
median) from the median of its recipe and partition (3 files or more).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from refsmith.report.geometry import reference_pixels
from refsmith.report.html import Html, esc, file_link, png_img, table
from refsmith.report.images import plane

__all__ = ["OUTLIER_SIGMA", "Point", "collect_points", "mark_outliers", "trend_png",
           "trends_section"]

OUTLIER_SIGMA = 5.0
MIN_RELATIVE = 0.01
"""The robust sigma of a series is at least this fraction of its median."""


@dataclass
class Point:
    """One individual file: where it belongs, when its inputs were taken, its statistic."""

    recipe: str
    partition: str
    path: str
    mjd: float
    value: float
    label: str
    outlier: bool = False


def file_statistic(path: str | Path) -> tuple[float, str]:
    """(value, what it is) of an individual reference file; raises OSError/ValueError."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdus:  # lazy: only what is asked for is read
        header = hdus[0].header
        names = [h.name for h in hdus]
        if "SCI" not in names and "DQ" in names:
            dq = hdus["DQ"].data
            refpix = reference_pixels(header, dq.shape)
            science = dq if refpix is None else dq[~refpix]
            return float(np.count_nonzero(science)), "flagged science pixels"
        sci = hdus["SCI"]
        shape = tuple(int(n) for n in sci.shape)
        if len(shape) >= 3:  # two planes of the cube, not the cube
            n = shape[-3]
            values = (plane(sci.section, shape, n - 1) - plane(sci.section, shape, 0)) \
                / max(n - 1, 1)
            label = "median rate (DN/group)"
        else:
            reftype = str(header.get("REFTYPE", "")).strip().lower()
            values, label = np.asarray(sci.data, np.float64), f"median {reftype}"
        refpix = reference_pixels({k: header[k] for k in ("SUBSTRT1", "SUBSTRT2",
                                                          "INSTRUME") if k in header},
                                  values.shape)
        values = values if refpix is None else values[~refpix]
        finite = values[np.isfinite(values)]
        return (float(np.median(finite)) if finite.size else math.nan), label


def collect_points(plan: Mapping[str, Any]) -> tuple[list[Point], list[str]]:
    """Every individual file the plan made that exists, with its statistic; and the files
    that could not be read (with why)."""
    mjd = {e["path"]: e.get("mjd") for e in plan.get("exposures", [])}
    partitions = {g["id"]: "/".join(map(str, g.get("partition", {}).values()))
                  for g in plan.get("groups", [])}
    points, problems = [], []
    for job in plan.get("reffile_jobs", []):
        output = job.get("output", "")
        if not output or not Path(output).is_file():
            continue
        times = [mjd.get(i.get("exposure")) for i in job.get("inputs", [])]
        times = [t for t in times if isinstance(t, (int, float))]
        try:
            value, label = file_statistic(output)
        except Exception as exc:  # any unreadable file is reported, never fatal
            problems.append(f"{output}: {type(exc).__name__}: {exc}")
            continue
        points.append(Point(job.get("recipe", ""), partitions.get(job.get("group"), "?"),
                            output, float(np.mean(times)) if times else math.nan, value,
                            label))
    return points, problems


def mark_outliers(points: Sequence[Point]) -> None:
    """Set ``outlier`` on the points far from the others of their recipe and partition."""
    series: dict[tuple[str, str], list[Point]] = {}
    for point in points:
        series.setdefault((point.recipe, point.partition), []).append(point)
    for members in series.values():
        values = np.array([p.value for p in members])
        finite = values[np.isfinite(values)]
        if finite.size < 3:
            continue
        median = float(np.median(finite))
        sigma = max(1.4826 * float(np.median(np.abs(finite - median))),
                    MIN_RELATIVE * abs(median))
        for point in members:
            point.outlier = bool(math.isfinite(point.value) and sigma > 0
                                 and abs(point.value - median) > OUTLIER_SIGMA * sigma)


def trend_png(recipe: str, points: Sequence[Point], dpi: int = 90) -> bytes:
    """One recipe's statistic against time, a line per partition, outliers ringed red."""
    from matplotlib import dates
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.6, 3.0), dpi=dpi, layout="constrained")
    ax = fig.subplots()
    zero = np.datetime64("1858-11-17")
    for index, partition in enumerate(sorted({p.partition for p in points})):
        series = sorted((p for p in points if p.partition == partition and
                         math.isfinite(p.mjd)), key=lambda p: p.mjd)
        when = [zero + np.timedelta64(int(p.mjd * 86400), "s") for p in series]
        ax.plot(when, [p.value for p in series], "o-", color=f"C{index % 10}", ms=4,
                label=partition)
        bad = [(w, p.value) for w, p in zip(when, series, strict=True) if p.outlier]
        if bad:
            ax.plot(*zip(*bad, strict=True), "o", ms=11, mfc="none", mec="#d62728", mew=2)
    locator = dates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    ax.set_ylabel(points[0].label if points else "", fontsize=8)
    ax.set_title(f"{recipe}: individual files against the mean time of their inputs "
                 "(outliers ringed)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def trends_section(plan: Mapping[str, Any], run_dir: Path, *, max_plots: int = 40) -> str:
    """A plot per recipe of its individual files' statistic, and the table of outliers."""
    from refsmith.report.summary import iso_from_mjd

    points, problems = collect_points(plan)
    mark_outliers(points)
    parts = ['<section id="trends"><h2>Trends of the individual files</h2>',
             '<p class="note">Each individual reference file\'s statistic (median of the '
             "science pixels; a dark's median rate; a mask's flagged science pixels) "
             "against the mean time of its inputs, one line per partition. Files further "
             f"than {OUTLIER_SIGMA:g} robust sigma from the median of their recipe and "
             "partition (3 files or more) are ringed: a bad exposure shows here before it "
             "spoils the final file.</p>"]
    if not points:
        parts.append('<p class="note">No individual reference file yet.</p>')
    recipes: dict[str, list[Point]] = {}
    for point in points:
        recipes.setdefault(point.recipe, []).append(point)
    for index, (recipe, members) in enumerate(recipes.items()):
        outliers = [p for p in members if p.outlier]
        parts.append(f"<h3>{esc(recipe)}: {len(members)} files, {len(outliers)} outliers</h3>")
        if index < max_plots:
            parts.append(png_img(trend_png(recipe, members), f"trend of {recipe}"))
        if outliers:
            rows = [(file_link(p.path, run_dir, text=Path(p.path).name), p.partition,
                     iso_from_mjd(p.mjd), f"{p.value:.4g}") for p in outliers]
            parts.append(table(("outlier", "partition", "inputs' time", members[0].label),
                               rows, cls="outliers"))
    if problems:
        parts.append(Html("<details><summary>individual files that cannot be read "
                          f"({len(problems)})</summary><ul>"
                          + "".join(f"<li>{esc(p)}</li>" for p in problems)
                          + "</ul></details>"))
    parts.append("</section>")
    return "\n".join(parts)

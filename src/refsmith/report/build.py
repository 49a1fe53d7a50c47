"""``build_report``: write ``<run>/report.html`` from a run directory."""

from __future__ import annotations

import time
from pathlib import Path

from refsmith.report.cards import describe_finals, reffiles_section, verdicts_html
from refsmith.report.html import esc, file_link, page
from refsmith.report.rundata import load_run
from refsmith.report.sections import jobs_section, timelines_section
from refsmith.report.summary import summary_section
from refsmith.report.trends import trends_section
from refsmith.util.files import atomic_write_text

__all__ = ["build_report"]

MAX_TIMELINES = 40
"""At most this many partitions get a timeline plot (the others: leftover tables only)."""
MAX_PICTURES = 100
"""At most this many final reference files get a picture (the others: statistics only)."""


def build_report(run_dir: str | Path, *, max_timelines: int = MAX_TIMELINES,
                 max_pictures: int = MAX_PICTURES) -> Path:
    """Write the self-contained HTML report of a run directory.

    Parameters
    ----------
    run_dir : str or Path
        The run directory (holding ``plan.json``; ``store.sqlite``, ``final/``,
        ``reffiles/`` and ``logs/`` when the plan was run).
    max_timelines : int, optional
        Partitions that get a timeline plot.
    max_pictures : int, optional
        Final reference files that get a picture.

    Returns
    -------
    Path
        ``<run_dir>/report.html`` (written atomically; inline CSS, PNG images as data
        URIs, no script, links to local files relative to the run directory).

    Raises
    ------
    RefsmithError
        When ``run_dir`` has no readable ``plan.json``.

    Examples
    --------
    >>> build_report("refsmith_out/myrun")  # doctest: +SKIP
    PosixPath('/data/refsmith_out/myrun/report.html')
    """
    run = load_run(run_dir)
    plan = run.plan
    views = describe_finals(run, max_pictures=max_pictures)
    body = "\n".join([
        summary_section(run, verdicts_html(run, views)),
        timelines_section(run, max_plots=max_timelines),
        jobs_section(run),
        trends_section(run.plan, run.run_dir, max_plots=max_timelines),
        reffiles_section(run, views, max_pictures=max_pictures),
    ])
    subtitle = " &middot; ".join([
        f"run directory {file_link(run.run_dir, run.run_dir, text=str(run.run_dir))}",
        f"config <code>{esc(plan.get('config', '?'))}</code>",
        f"plan made {esc(plan.get('created', '?'))}",
        f"refsmith {esc(plan.get('refsmith_version', '?'))}",
        f"report written {esc(time.strftime('%Y-%m-%d %H:%M:%S'))}",
    ])
    html_text = page(f"refsmith report: {run.run_dir.name}", subtitle,
                     [("summary", "Summary"), ("timeline", "Timelines"), ("jobs", "Jobs"),
                      ("trends", "Trends"), ("reffiles", "Reference files")], body)
    target = run.run_dir / "report.html"
    atomic_write_text(target, html_text)
    return target

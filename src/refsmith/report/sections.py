"""The report's timeline, job and reference-file sections."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from refsmith.report.html import Html, esc, file_link, png_img, table
from refsmith.report.reffiles import describe_reffile
from refsmith.report.rundata import RunData, log_tail
from refsmith.report.summary import MAX_LISTED, STATE_ORDER, duration, iso_from_mjd
from refsmith.report.timeline import LeftoverMark, build_timelines, timeline_png

__all__ = ["jobs_section", "reffiles_section", "timelines_section"]

MAX_FAILURES_WITH_LOG = 50
"""Failed jobs whose log tail is shown (the others are listed)."""
OPEN_JOB_ROWS = 60
"""Finished jobs are folded away (``<details>``) when there are more than this many."""


def _leftover_table(marks: Sequence[LeftoverMark]) -> Html:
    rows = [(m.number, m.recipe, Html(f'<span class="path" title="{esc(m.path)}">'
                                      f"{esc(Path(m.path).name)}</span>"),
             iso_from_mjd(m.mjd) or "no time", m.imtype,
             Html(f'<span class="reason">{esc(m.reason)}</span>'))
            for m in marks[:MAX_LISTED]]
    out = table(("#", "recipe", "file", "time", "type", "why it is in no group"), rows,
                cls="leftovers")
    if len(marks) > MAX_LISTED:
        out += Html(f'<p class="note">first {MAX_LISTED} of {len(marks)} leftovers</p>')
    return out


def timelines_section(run: RunData, *, max_plots: int) -> str:
    """One timeline plot per partition with the table of its leftovers' reasons."""
    timelines, unplaced = build_timelines(run.plan)
    parts = ['<section id="timeline"><h2>Timelines</h2>',
             '<p class="note">One plot per partition (the <code>group_by</code> values). Top '
             "row: every usable exposure by image type. Below, one row per recipe: each "
             "group is a line through its members (groups that overlap in time on separate "
             "lanes); red hollow marks are exposures of the recipe's image types that are in "
             "no group, numbered as in the table below the plot.</p>"]
    if not timelines:
        parts.append('<p class="note">No usable exposure has a partition: nothing to plot.'
                     "</p>")
    for index, line in enumerate(timelines):
        parts.append(f"<h3>{esc(line.key)}</h3>")
        if index < max_plots:
            if line.exposures:
                parts.append(png_img(timeline_png(line), f"timeline of {line.key}"))
            else:
                parts.append('<p class="note">No exposure of this partition has a time.</p>')
        elif index == max_plots:
            parts.append(f'<p class="note">Only the first {max_plots} of {len(timelines)} '
                         "partitions are plotted; the others show their leftovers only.</p>")
        marks = line.leftovers
        groups = sum(len(r.groups) for r in line.rows)
        parts.append(f'<p class="note">{len(line.exposures)} exposures with a time, '
                     f"{groups} groups, {len(marks)} leftovers.</p>")
        if marks:
            parts.append(_leftover_table(marks))
    if unplaced:
        parts.append("<h3>Left out before partitioning</h3>"
                     '<p class="note">Candidates without a partition (unusable files).</p>')
        parts.append(_leftover_table(unplaced))
    parts.append("</section>")
    return "\n".join(parts)


def _state(state: str) -> Html:
    return Html(f'<span class="state {esc(state)}">{esc(state)}</span>')


def _log(job: dict[str, Any], base: Path) -> Html:
    path = job.get("log_path") or ""
    if path and Path(path).is_file():
        return file_link(path, base, text=Path(path).name)
    return Html('<span class="note">no log</span>')


def _job_rows(jobs: Sequence[dict[str, Any]], base: Path) -> list[tuple[object, ...]]:
    return [(Html(f'<span class="path">{esc(j["id"])}</span>'), j.get("kind", ""),
             _state(j["state"]), j.get("attempts", 0), duration(j.get("seconds")),
             j.get("worker", ""), _log(j, base)) for j in jobs]


def jobs_section(run: RunData) -> str:
    """Failures first with their log tails, then every job with state, duration, worker."""
    parts = ['<section id="jobs"><h2>Jobs</h2>']
    if run.store is None:
        parts.append('<p class="note">No jobs were run in this directory (no store.sqlite: '
                     "the plan was made but not executed).</p></section>")
        return "\n".join(parts)
    rank = {s: i for i, s in enumerate(STATE_ORDER)}
    jobs = sorted(run.store.jobs, key=lambda j: (rank.get(j["state"], len(rank)), j["id"]))
    failed = [j for j in jobs if j["state"] == "failed"]
    blocked = [j for j in jobs if j["state"] == "blocked"]
    if failed:
        parts.append(f"<h3>Failures ({len(failed)})</h3>")
    for job in failed[:MAX_FAILURES_WITH_LOG]:
        tail = log_tail(job.get("log_path", ""))
        log = (f'<pre class="log">{esc(chr(10).join(tail))}</pre>' if tail
               else '<p class="note">(no log written)</p>')
        parts.append(
            f'<div class="failure"><b class="path">{esc(job["id"])}</b> '
            f'<span class="note">{esc(job.get("kind", ""))}, {esc(job.get("attempts", 0))} '
            f"attempts, worker {esc(job.get('worker') or '?')}, log "
            f"{_log(job, run.run_dir)}</span>"
            f'<div class="err">{esc(job.get("error") or "(no error message)")}</div>'
            f"<div class=\"note\">last lines of the log:</div>{log}</div>")
    if len(failed) > MAX_FAILURES_WITH_LOG:
        parts.append(f'<p class="note">{len(failed) - MAX_FAILURES_WITH_LOG} more failures '
                     "are in the table below.</p>")
    if blocked:
        parts.append(f"<h3>Blocked ({len(blocked)})</h3>")
        parts.append(table(("job", "why"), [(j["id"], j.get("error", ""))
                                            for j in blocked[:MAX_LISTED]]))
    headers = ("job", "kind", "state", "attempts", "duration", "worker", "log")
    open_jobs = [j for j in jobs if j["state"] not in ("done", "cached")]
    finished = [j for j in jobs if j["state"] in ("done", "cached")]
    parts.append(f"<h3>All jobs ({len(jobs)})</h3>")
    if len(jobs) <= OPEN_JOB_ROWS:
        parts.append(table(headers, _job_rows(jobs, run.run_dir), cls="jobs"))
    else:
        if open_jobs:
            parts.append(table(headers, _job_rows(open_jobs, run.run_dir), cls="jobs"))
        parts.append(f"<details><summary>{len(finished)} finished jobs (done or cached)"
                     f"</summary>{table(headers, _job_rows(finished, run.run_dir))}</details>")
    parts.append("</section>")
    return "\n".join(parts)


def _sources(view: Any, base: Path) -> str:
    if not view.sources:
        return '<p class="note">Provenance unknown (not in the plan, no HISTORY).</p>'
    items = []
    for source in view.sources:
        exposures = "".join(f"<li><code>{esc(role)}</code> "
                            f"{file_link(raw, base, text=Path(raw).name)}</li>"
                            for role, raw in source.exposures)
        items.append(f"<li>{file_link(source.path, base, text=Path(source.path).name)}"
                     + (f"<ul>{exposures}</ul>" if exposures else "") + "</li>")
    listing = f"<ul>{''.join(items)}</ul>"
    n_raw = sum(len(s.exposures) for s in view.sources)
    label = f"made from {len(view.sources)} individual files ({n_raw} exposures)"
    if len(items) > 8 or n_raw > 12:
        return f"<details><summary>{esc(label)}</summary>{listing}</details>"
    return f"<p>{esc(label)}:</p>{listing}"


def reffiles_section(run: RunData, *, max_pictures: int) -> str:
    """Per final reference file: picture, histogram, statistics and provenance."""
    parts = ['<section id="reffiles"><h2>Final reference files</h2>']
    if not run.final_files:
        parts.append('<p class="note">No final reference file in '
                     f"{file_link(run.run_dir / 'final', run.run_dir)}/ yet.</p>")
        if run.individual_files:
            links = "".join(f"<li>{file_link(p, run.run_dir)}</li>"
                            for p in run.individual_files[:MAX_LISTED])
            parts.append(f"<p>Individual files written so far:</p><ul>{links}</ul>")
    for index, path in enumerate(run.final_files):
        view = describe_reffile(path, run.plan, picture=index < max_pictures)
        parts.append('<div class="reffile">')
        parts.append(f"<h3>{esc(view.recipe)}: {file_link(path, run.run_dir, text=path.name)}"
                     "</h3>")
        if view.error:
            parts.append(f'<p class="reason">cannot be read: {esc(view.error)}</p>')
        else:
            rows = [("array", view.array), ("shape", " x ".join(map(str, view.shape))),
                    *view.stats.items(), *sorted(view.meta.items())]
            picture = (png_img(view.png, f"{path.name}: {view.array} and histogram")
                       if view.png is not None else
                       f'<p class="note">Pictures are drawn for the first {max_pictures} '
                       "files only.</p>")
            parts.append(f'<div class="cols"><div class="stats">'
                         f'{table(("", "value"), rows)}</div><div>{picture}</div></div>')
        parts.append(_sources(view, run.run_dir))
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)

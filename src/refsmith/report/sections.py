"""The report's timeline, job and reference-file sections."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from refsmith.report.html import Html, esc, file_link, png_img, table
from refsmith.report.rundata import RunData, log_tail
from refsmith.report.summary import MAX_LISTED, STATE_ORDER, duration, iso_from_mjd, reason_kind
from refsmith.report.timeline import LeftoverMark, build_timelines, timeline_png

__all__ = ["jobs_section", "timelines_section"]

MAX_FAILURES_WITH_LOG = 50
"""Failed jobs whose log tail is shown (the others are listed)."""
OPEN_LEFTOVERS = 10
"""A group of leftovers (one recipe, one reason) is shown open when it has at most this
many files, folded otherwise."""


def _leftover_rows(marks: Sequence[LeftoverMark]) -> Html:
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


def _leftover_table(marks: Sequence[LeftoverMark]) -> Html:
    """Leftovers grouped by recipe and reason (the reason without its file details), each
    group a ``<details>`` section, open when it is short."""
    groups: dict[tuple[str, str], list[LeftoverMark]] = {}
    for mark in marks:
        groups.setdefault((mark.recipe, reason_kind(mark.reason)), []).append(mark)
    parts = []
    for (recipe, reason), items in sorted(groups.items(), key=lambda kv: (kv[0][0],
                                                                         -len(kv[1]))):
        opened = " open" if len(items) <= OPEN_LEFTOVERS else ""
        parts.append(f'<details class="leftovers"{opened}><summary>{esc(recipe)}: '
                     f"{len(items)} left out, {esc(reason)}</summary>"
                     f"{_leftover_rows(items)}</details>")
    return Html("\n".join(parts))


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


def _grouped_jobs(jobs: Sequence[dict[str, Any]], base: Path) -> str:
    """One ``<details>`` per kind and state (failed ones open), in :data:`STATE_ORDER`."""
    headers = ("job", "kind", "state", "attempts", "duration", "worker", "log")
    kinds = {"calibration": 0, "reffile": 1, "combine": 2}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for job in jobs:
        groups.setdefault((job["state"], job.get("kind", "")), []).append(job)
    rank = {s: i for i, s in enumerate(STATE_ORDER)}
    parts = []
    for (state, kind), items in sorted(groups.items(), key=lambda kv: (
            rank.get(kv[0][0], len(rank)), kinds.get(kv[0][1], 3), kv[0][1])):
        listing = table(headers, _job_rows(items[:MAX_LISTED], base), cls="jobs")
        if len(items) > MAX_LISTED:
            listing += Html(f'<p class="note">first {MAX_LISTED} of {len(items)}; '
                            "<code>refsmith status --all</code> lists every job</p>")
        opened = " open" if state == "failed" else ""
        parts.append(f'<details class="jobs {esc(state)}"{opened}><summary>{esc(kind or "?")} '
                     f"jobs {_state(state)} {len(items)}</summary>{listing}</details>")
    return "\n".join(parts)


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
    parts.append(f"<h3>All jobs ({len(jobs)})</h3>")
    parts.append('<p class="note">By kind and state; failures open, the others folded.</p>')
    parts.append(_grouped_jobs(jobs, run.run_dir))
    parts.append("</section>")
    return "\n".join(parts)

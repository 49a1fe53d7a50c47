"""The report's summary section: inputs, groups per recipe, jobs by state, outputs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from refsmith.report.history import history_html, work_note
from refsmith.report.html import Html, esc, file_link, table
from refsmith.report.rundata import RunData, wall_seconds

__all__ = ["STATE_ORDER", "duration", "iso_from_mjd", "job_counts", "reason_kind",
           "summary_section"]

STATE_ORDER = ("failed", "blocked", "running", "pending", "done", "cached")
"""Order of job states in the report: what needs attention first."""
MAX_LISTED = 500
"""Longest list of files printed in one table."""
_MJD_ZERO = datetime(1858, 11, 17)


def iso_from_mjd(mjd: Any) -> str:
    """``2024-01-16 12:00`` for an MJD ("" when unknown)."""
    if not isinstance(mjd, (int, float)) or mjd != mjd:
        return ""
    return (_MJD_ZERO + timedelta(days=float(mjd))).strftime("%Y-%m-%d %H:%M")


def duration(seconds: Any) -> str:
    """A duration for people: ``0.4 s``, ``12 s``, ``3 min 05 s``, ``2 h 04 min``."""
    if not isinstance(seconds, (int, float)) or seconds != seconds or seconds < 0:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def job_counts(run: RunData) -> dict[str, int]:
    """Jobs per state (every state of :data:`STATE_ORDER`, zeros included)."""
    counts = dict.fromkeys(STATE_ORDER, 0)
    for job in run.store.jobs if run.store else []:
        counts[job["state"]] = counts.get(job["state"], 0) + 1
    return counts


def _card(number: object, label: str, kind: str = "") -> str:
    cls = f"card {kind}".strip()
    return (f'<div class="{cls}"><div class="n">{esc(number)}</div>'
            f'<div class="l">{esc(label)}</div></div>')


def _inputs(plan: Mapping[str, Any]) -> str:
    exposures = plan.get("exposures", [])
    usable = [e for e in exposures if e.get("usable", True)]
    unclassified = [e for e in usable if not e.get("imtype")]
    unusable = [e for e in exposures if not e.get("usable", True)]
    parts = ['<div class="cards">',
             _card(len(exposures), "input files"),
             _card(len(usable) - len(unclassified), "usable, classified", "ok"),
             _card(len(unclassified), "unclassified", "warn" if unclassified else ""),
             _card(len(unusable), "unusable", "bad" if unusable else ""), "</div>"]
    types = Counter(e.get("imtype") or "unclassified" for e in usable)
    if types:
        parts.append(table(("image type", "usable exposures"), sorted(types.items())))
    inputs = plan.get("inputs", {})
    notes = []
    if inputs.get("missing"):
        notes.append(f"inputs that matched nothing: {', '.join(map(str, inputs['missing']))}")
    if inputs.get("duplicates"):
        notes.append(f"{inputs['duplicates']} files reached twice (counted once)")
    if inputs.get("filtered_by_pattern"):
        notes.append(f"{inputs['filtered_by_pattern']} files left out by inputs.pattern")
    notes += [str(n) for n in plan.get("notices", [])]
    if notes:
        parts.append("<ul class=\"note\">" + "".join(f"<li>{esc(n)}</li>" for n in notes)
                     + "</ul>")
    if unusable:
        reasons = Counter(reason_kind(e.get("reason", "")) for e in unusable)
        parts.append("<h3>Unusable inputs</h3>")
        parts.append(table(("reason", "files"), reasons.most_common()))
        rows = [(Html(f'<span class="path">{esc(e["path"])}</span>'),
                 Html(f'<span class="reason">{esc(e.get("reason", ""))}</span>'))
                for e in sorted(unusable, key=lambda e: e["path"])[:MAX_LISTED]]
        listing = table(("file", "reason"), rows)
        if len(unusable) > MAX_LISTED:
            listing += Html(f'<p class="note">first {MAX_LISTED} of {len(unusable)}</p>')
        if len(unusable) > 20:
            listing = Html(f"<details><summary>every unusable file ({len(unusable)})</summary>"
                           f"{listing}</details>")
        parts.append(listing)
    if unclassified:
        rows = [(Html(f'<span class="path">{esc(e["path"])}</span>'), e.get("exp_type") or "")
                for e in sorted(unclassified, key=lambda e: e["path"])[:MAX_LISTED]]
        parts.append(f"<details><summary>unclassified files ({len(unclassified)}): no image "
                     "type rule matched them</summary>"
                     f"{table(('file', 'EXP_TYPE'), rows)}</details>")
    return "\n".join(parts)


def reason_kind(reason: str) -> str:
    """The reason without its file-specific details (``truncated: no END card``)."""
    return reason.split(" (", 1)[0] if reason else "(no reason given)"


def _recipes(run: RunData) -> str:
    plan = run.plan
    groups: dict[str, list[dict[str, Any]]] = {}
    for group in plan.get("groups", []):
        groups.setdefault(group["recipe"], []).append(group)
    left = Counter(item["recipe"] for item in plan.get("leftovers", []))
    finals = Counter(p.parent.name for p in run.final_files)
    recipes = list(groups) + sorted(set(left) - set(groups))
    rows = []
    for recipe in recipes:
        members = {m["path"] for g in groups.get(recipe, []) for m in g.get("members", [])}
        first = (groups.get(recipe) or [{}])[0]
        partitions = {tuple(map(str, g.get("partition", {}).values()))
                      for g in groups.get(recipe, [])}
        rows.append((recipe, first.get("reftype", ""), first.get("imtypes", ""),
                     len(groups.get(recipe, [])), len(partitions), len(members),
                     left.get(recipe, 0), finals.get(recipe, 0)))
    if not rows:
        return '<p class="note">No recipe formed a group and no candidate was left out.</p>'
    return table(("recipe", "reftype", "imtypes", "groups", "partitions", "exposures grouped",
                  "left out", "final files"), rows, cls="recipes")


def _jobs(run: RunData) -> str:
    plan = run.plan
    planned = (f"{len(plan.get('calibration_jobs', []))} calibration, "
               f"{len(plan.get('reffile_jobs', []))} reference-file and "
               f"{len(plan.get('combine_jobs', []))} combine jobs planned")
    if run.store is None:
        return (f'<p class="note">No jobs were run in this directory (plan only: no '
                f"store.sqlite): {esc(planned)}. <code>refsmith run</code> executes them.</p>")
    counts = job_counts(run)
    kinds = {"failed": "bad", "blocked": "warn", "running": "warn", "pending": "warn",
             "done": "ok", "cached": "ok"}
    cards = "".join(_card(n, state, kinds.get(state, "") if n else "")
                    for state, n in counts.items())
    wall = wall_seconds(run.store)
    work = work_note(run.store, duration)
    extra = (f"; {work}" if work else
             f"; wall time of the last run {duration(wall)}" if wall is not None else "")
    if not plan.get("calibration_jobs") and plan.get("reffile_jobs"):
        extra += (" (no calibration job: every grouped input was already calibrated, by an "
                  "earlier run or in the search directories)")
    return (f'<div class="cards">{cards}</div>'
            f'<p class="note">{esc(planned)}{esc(extra)}.</p>'
            + history_html(run.store, duration))


def _outputs(run: RunData, verdicts: str = "") -> str:
    final_dir = run.run_dir / "final"
    if not run.final_files:
        where = ("no final reference file has been written yet" if run.store is not None
                 else "final reference files are written when the plan is run")
        return f'<p class="note">Final reference files go to {file_link(final_dir, run.run_dir)}' \
               f"/: {esc(where)}.</p>"
    intro = (f"<p>{len(run.final_files)} final reference files in "
             f"{file_link(final_dir, run.run_dir)}/ (individual files in "
             f"{file_link(run.run_dir / 'reffiles', run.run_dir)}/)")
    if verdicts:
        return intro + ", each compared with its baseline:</p>" + verdicts
    links = "".join(f"<li>{file_link(p, run.run_dir)}</li>" for p in run.final_files)
    return f"{intro}:</p><ul>{links}</ul>"


def summary_section(run: RunData, verdicts: str = "") -> str:
    """The summary: inputs, groups per recipe, jobs by state, wall time and run history,
    final files (with ``verdicts``, the HTML of their comparisons, when given)."""
    return "\n".join([
        '<section id="summary"><h2>Summary</h2>',
        "<h3>Inputs</h3>", _inputs(run.plan),
        "<h3>Groups per recipe</h3>", _recipes(run),
        "<h3>Jobs</h3>", _jobs(run),
        "<h3>Final reference files</h3>", _outputs(run, verdicts),
        "</section>",
    ])

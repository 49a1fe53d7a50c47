"""The run history in the report: every ``refsmith run`` of the run directory."""

from __future__ import annotations

import time
from typing import Any

from refsmith.report.html import Html, esc, table
from refsmith.report.rundata import StoreView, working_run

__all__ = ["history_html", "when", "work_note"]

OPEN_RUNS = 10
"""The history is folded away (``<details>``) when it holds more runs than this."""


def when(epoch: Any) -> str:
    """``2024-01-16 12:00:05`` (local time) for a Unix time ("" when unknown)."""
    if not isinstance(epoch, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def work_note(store: StoreView, duration: Any) -> str:
    """Which run did the work and how long it took; what the last run did if it differs.

    ``duration`` formats seconds (the summary's ``duration``). "" without a history.
    """
    if not store.runs:
        return ""
    worked, last = working_run(store), store.runs[-1]
    if worked is None:
        return (f"no recorded run executed a job (the last one started "
                f"{when(last.get('started'))})")
    note = (f"the run that did the work started {when(worked.get('started'))}, executed "
            f"{worked.get('executed', 0)} jobs ({worked.get('failed', 0)} failed) in "
            f"{duration(worked.get('seconds'))}")
    if last is not worked:
        later = store.runs[store.runs.index(worked) + 1:]
        note += (f"; {len(later)} later run{'s' if len(later) > 1 else ''} executed "
                 f"{sum(r.get('executed') or 0 for r in later)} jobs (the last started "
                 f"{when(last.get('started'))})")
    return note


def _outcome(entry: dict[str, Any]) -> Html:
    if entry.get("ended") is None:
        return Html('<span class="state failed">did not finish</span>')
    if entry.get("stopped"):
        return Html(f'<span class="state failed">stopped: {esc(entry["stopped"])}</span>')
    if entry.get("failed"):
        return Html('<span class="state failed">failures</span>')
    if not entry.get("executed"):
        return Html('<span class="state cached">nothing to do</span>')
    return Html('<span class="state done">ok</span>')


def history_html(store: StoreView | None, duration: Any) -> str:
    """A table of every recorded run (newest first), folded when long."""
    if store is None or not store.runs:
        return ('<p class="note">No run history recorded (a plan only, or a store written '
                "before runs were recorded).</p>")
    rows = [(len(store.runs) - i, when(r.get("started")), when(r.get("ended")),
             duration(r.get("seconds")), r.get("jobs", ""), r.get("executed", ""),
             r.get("failed", ""), _outcome(r))
            for i, r in enumerate(reversed(store.runs))]
    listing = table(("run", "started", "ended", "wall time", "jobs", "executed", "failed",
                     "outcome"), rows, cls="history")
    label = f"run history ({len(rows)} runs of refsmith run in this directory)"
    opened = " open" if len(rows) <= OPEN_RUNS else ""
    return f"<details{opened}><summary>{esc(label)}</summary>{listing}</details>"

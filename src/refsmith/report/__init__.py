"""The HTML report of a run directory (``refsmith report RUNDIR``).

:func:`build_report` writes ``<run>/report.html``: one self-contained file (inline CSS,
PNG plots as data URIs, no script, no network) with a summary of the inputs, groups, jobs,
run history and a verdict per final file, a timeline plot per partition showing why
exposures were or were not grouped, the job table (folded by kind and state) with the
failures' log tails, trends of the individual files, and a card per final reference file
(pictures, statistics, per-amplifier statistics, comparison with a baseline,
provenance). Matplotlib is imported only when a plot is drawn. The report reads only the
run directory (plan.json, the store, the reference files), the run's config (for
``report.baselines``) and the baselines.

Modules: ``build`` (the page), ``summary``, ``history``, ``sections`` (timelines, jobs),
``timeline``, ``trends``, ``cards`` (the final files' section and verdicts), ``reffiles``
(one final file), ``images`` (reading a reference file), ``geometry`` (reference pixels,
amplifiers), ``compare`` (file against baseline; ``refsmith compare``), ``baselines``
(which baseline), ``plots``, ``html``, ``rundata``.
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {"build_report": "build"}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)

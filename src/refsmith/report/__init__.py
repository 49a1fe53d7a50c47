"""The HTML report of a run directory (``refsmith report RUNDIR``).

:func:`build_report` writes ``<run>/report.html``: one self-contained file (inline CSS,
PNG plots as data URIs, no script, no network) with a summary of the inputs, groups and
jobs, a timeline plot per partition showing why exposures were or were not grouped, the
job table with the failures' log tails, and a picture, statistics and provenance of every
final reference file. Matplotlib is imported only when a plot is drawn. The report reads
only the run directory (plan.json, the store, the reference files).
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {"build_report": "build"}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)

"""Stage 3, groups -> jobs: which calwebb_detector1 steps each grouped exposure still
needs, from which file, and the job DAG that makes the reference files.

``specs`` (:class:`RecipeSpec`: what a recipe asks, and the state it requires),
``starts`` (the file each exposure starts from: its raw file or an earlier product),
``references`` (``pipeline.references`` resolved per exposure), ``calibration_jobs``
(requests -> merged calibration jobs), ``reffile_jobs`` (reference-file and combine jobs,
'self' references, the cycle check) and ``planner`` (groups and start files -> the job DAG,
:class:`CalibrationPlan`). Two calls of :func:`refsmith.plan.build_plan`:
:func:`choose_starts` before grouping, :func:`plan_jobs` after it. Pure: reads primary
headers only (with the reader it is given), imports no pipeline code.
See docs/planning.md.
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {
    "CalibrationPlan": "planner", "plan_jobs": "planner",
    "HeaderReader": "references", "ReferenceResolver": "references",
    "PlanningOptions": "specs", "RecipeSpec": "specs", "required_state": "specs",
    "StartFiles": "starts", "choose_start": "starts", "choose_starts": "starts",
    "evaluate_candidate": "starts",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)

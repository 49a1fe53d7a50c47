"""refsmith: organise, calibrate and build JWST calibration reference files.

The data flow, one package per stage: ``catalog`` (files -> exposures) -> ``grouping``
(recipes -> groups) -> ``planning`` (groups -> jobs, ``jobs`` holding the records) ->
``calibrate`` (calwebb_detector1) -> ``plugins`` (reference files) -> ``report``.
:func:`build_plan` (``plan``) runs the first three, :func:`run` (``running``) plans and
executes (``execute``); ``detector1`` is what refsmith knows of the pipeline, ``config``
the configuration, ``cli`` the command line. See docs/design.md.

The names below are imported on first use (PEP 562): ``import refsmith`` imports nothing
else.
"""

from refsmith.util.lazy import lazy_exports

__version__ = "0.1.0"

_WHERE = {
    "Config": "refsmith.config.config", "load_config": "refsmith.config.loading",
    "Catalog": "refsmith.catalog.catalog", "scan": "refsmith.catalog.catalog",
    "CatalogOptions": "refsmith.catalog.options",
    "Plan": "refsmith.plan", "build_plan": "refsmith.plan",
    "write_run_dir": "refsmith.plan_files",
    "RunOptions": "refsmith.running", "RunSummary": "refsmith.running",
    "run": "refsmith.running", "status": "refsmith.running",
    "build_report": "refsmith.report.build",
    "ReffilePlugin": "refsmith.plugins.base",
    "Exposure": "refsmith.model", "Group": "refsmith.model", "Leftover": "refsmith.model",
    "Member": "refsmith.model",
    "ConfigError": "refsmith.errors", "PlanError": "refsmith.errors",
    "RefsmithError": "refsmith.errors",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)

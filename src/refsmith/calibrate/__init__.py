"""Running calwebb_detector1: the only package that imports jwst (and CRDS).

``setup`` (one job checked against its start file, the pipeline's ``steps=``
configuration), ``runner`` (:func:`run_calibration`: one job in-process, products
published atomically with exactly their target state), ``products`` (calibrated products on
disk: valid, provenance, stale ones set aside) and ``offline`` (CRDS without a network).
jwst is imported inside the functions that run it, never when a module is imported.
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {
    "OfflineConfigError": "offline", "configure_offline": "offline",
    "offline_environment": "offline",
    "installed_jwst_version": "products", "outputs_valid": "products",
    "provenance_path": "products",
    "import_pipeline": "runner", "run_calibration": "runner",
    "JobFailure": "setup", "prepare_run": "setup",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)

"""Synthetic JWST data for the demo, the tests and the benchmarks.

``headers`` (header-only exposures that look like real ``_uncal.fits`` files, and broken
files), ``ramps`` (small real ramps with injected defects, which calwebb_detector1 accepts)
and ``references`` (the matching small reference files and per-step overrides, so that the
real pipeline runs without CRDS).
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {
    "write_bad_file": "headers", "write_exposure": "headers",
    "inject_defects": "ramps", "write_raw_exposure": "ramps",
    "reference_overrides": "references", "write_reference_files": "references",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)

"""The memory a calibration job needs: a model of calwebb_detector1's peak resident memory.

The estimate is linear in the number of pixel-groups ``N = NINTS x NGROUPS x NY x NX``, with
the coefficients of the heaviest kind of step the job runs (:func:`calibration_memory`);
``NY x NX`` is SUBSIZE2 x SUBSIZE1, else the instrument's full frame (:func:`frame_shape`).
See docs/running.md, "Memory". Pure and cheap: ``refsmith plan`` calls it for every job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "DETECTOR_STEPS",
    "DQ_INIT",
    "JUMP",
    "JUMP_ITERATIVE",
    "SHAPE_KEYWORDS",
    "calibration_memory",
    "frame_shape",
]

# The model of a calibration job's peak resident memory above the worker's base,
#   (a + b x N + c x NY x NX) x MODEL_MARGIN,   N = NINTS x NGROUPS x NY x NX pixel-groups,
# with (a, b, c) of the heaviest kind of step the job runs. Fitted to 25 jobs measured one
# by one in fresh processes (jwst 3.0.0, stcal 1.20, NIRCam RAPID, full frame 1-2 x 5-40
# groups and 512 x 512; peak = VmHWM above the process's RSS after `import jwst`); the
# largest error of a fit was 8.7 %, both ways, hence the margin. docs/running.md, "Memory",
# has the measurements.
MIB = 2**20
JUMP_ITERATIVE = (14.0 * MIB, 55.55, 57.8)
"""jump with NGROUPS <= 10: stcal's iterative search holds the peak (1 x 10 x 2048**2:
2.50 GB measured)."""
JUMP = (12.7 * MIB, 20.91, 21.7)
"""jump (NGROUPS >= 11, single pass), dark_current, ramp_fit (1 x 20 x 2048**2: 1.77 GB)."""
DETECTOR_STEPS = (43.4 * MIB, 6.88, 27.3)
"""Any other step after dq_init: saturation, superbias, refpix, linearity... (saturation
holds the peak: 1 x 20 x 2048**2: 0.70 GB)."""
DQ_INIT = (8.1 * MIB, 5.69, 9.2)
"""dq_init alone (opening the input: 1 x 20 x 2048**2: 0.49 GB)."""
MODEL_MARGIN = 1.15
ITERATIVE_JUMP_GROUPS = 10  # stcal's min_diffs_single_pass: NGROUPS - 1 < 10 iterates
HEAVY_STEPS = frozenset({"jump", "dark_current", "ramp_fit"})
"""Steps whose presence selects :data:`JUMP` (or :data:`JUMP_ITERATIVE`)."""

# Full frames (NY, NX) when the header has no SUBSIZE2/SUBSIZE1: the near-infrared
# detectors are 2048 x 2048, MIRI's 1024 rows of 1032 columns (reference columns included).
FULL_FRAME = {"MIRI": (1024, 1032)}
NIR_FULL_FRAME = (2048, 2048)
SHAPE_KEYWORDS = ("SUBSIZE1", "SUBSIZE2")
"""Header keywords of an exposure's columns and rows (the planner reads them)."""


def frame_shape(instrument: str, subsize1: Any, subsize2: Any) -> tuple[int, int]:
    """``(NY, NX)`` of an exposure: SUBSIZE2 x SUBSIZE1, else its instrument's full frame.

    Parameters
    ----------
    instrument : str
        INSTRUME, normalised (``MIRI``, ``NIRCAM``...).
    subsize1, subsize2 : int, str or None
        The header values (columns, rows); None or unusable values give the full frame.
    """
    full_ny, full_nx = FULL_FRAME.get(instrument, NIR_FULL_FRAME)
    return _size(subsize2, full_ny), _size(subsize1, full_nx)


def _size(value: Any, default: int) -> int:
    if type(value) is int and value > 0:
        return value
    try:
        size = int(float(str(value).strip()))
    except ValueError:
        return default
    return size if size > 0 else default


def calibration_memory(nints: int | None, ngroups: int | None, ny: int, nx: int,
                       steps_to_run: Iterable[str]) -> int:
    """Estimated peak memory (bytes) of a calibration job above the worker's base.

    Parameters
    ----------
    nints, ngroups : int or None
        NINTS (None: 1) and NGROUPS (None: unknown, the estimate is 0).
    ny, nx : int
        Rows and columns of the exposure (:func:`frame_shape`).
    steps_to_run : iterable of str
        The steps the job runs.

    Returns
    -------
    int
        ``(a + b N + c NY NX) x MODEL_MARGIN`` with ``N = NINTS x NGROUPS x NY x NX`` and
        the coefficients of the heaviest step (:data:`JUMP_ITERATIVE`, :data:`JUMP`,
        :data:`DETECTOR_STEPS`, :data:`DQ_INIT`); 0 (no estimate) when NGROUPS is
        unknown or no step runs.
    """
    steps = set(steps_to_run)
    if not ngroups or ngroups < 0 or not steps:
        return 0
    if "jump" in steps and ngroups <= ITERATIVE_JUMP_GROUPS:
        a, b, c = JUMP_ITERATIVE
    elif steps & HEAVY_STEPS:
        a, b, c = JUMP
    elif steps - {"dq_init", "group_scale"}:
        a, b, c = DETECTOR_STEPS
    else:
        a, b, c = DQ_INIT
    pixels = ny * nx
    return int((a + b * (nints or 1) * ngroups * pixels + c * pixels) * MODEL_MARGIN)

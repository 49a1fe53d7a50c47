"""Memory sizes: parsing ``4GiB``, the jobs' estimates, the memory this machine has free.

A calibration job's estimate comes from a model of calwebb_detector1's peak resident
memory above the worker's base, linear in the number of pixel-groups
``N = NINTS x NGROUPS x NY x NX`` (:func:`calibration_memory`); reference-file and
combine jobs get their recipe's budget (``execution.reffile_memory``,
``recipes.<name>.memory``). The local executor admits jobs while their estimates fit in
``execution.max_memory`` (default :func:`default_max_memory`). See docs/running.md,
"Memory". Pure and cheap: used by ``refsmith plan`` for every job.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
from collections.abc import Iterable
from typing import Any

from refsmith.errors import ConfigError

__all__ = [
    "DETECTOR_STEPS",
    "DQ_INIT",
    "JUMP",
    "JUMP_ITERATIVE",
    "SHAPE_KEYWORDS",
    "WORKER_BASE",
    "available_memory",
    "calibration_memory",
    "default_max_memory",
    "format_memory",
    "frame_shape",
    "keep_freed_memory",
    "parse_memory",
    "peak_rss",
    "release_memory",
    "reset_peak_rss",
    "resident_memory",
]

GB = 1000**3

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

WORKER_BASE = 512 * 1024**2
"""Memory reserved for each worker process itself (not part of any job's estimate).

A worker measured 0.25 GB resident right after ``import jwst`` (VmHWM, jwst 3.0.0, on
a 2-core 24 GiB machine); 0.5 GiB leaves room for what it keeps between jobs (CRDS and
datamodel caches, memory the allocator does not give back).
"""

_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "KIB": 1024, "M": 1000**2, "MB": 1000**2,
          "MIB": 1024**2, "G": 1000**3, "GB": 1000**3, "GIB": 1024**3, "T": 1000**4,
          "TB": 1000**4, "TIB": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)\s*")


def parse_memory(text: str | None, key: str = "max_memory") -> int | None:
    """``'4GiB'`` -> bytes (``None`` stays None). Units B, KB/KiB, MB/MiB, GB/GiB, TB/TiB.

    Parameters
    ----------
    text : str or None
        The size; K, M, G, T are powers of 1000, KiB, MiB, GiB, TiB powers of 1024.
    key : str
        The config key or option the value comes from, named in the error.

    Raises
    ------
    ConfigError
        When ``text`` is not a size.
    """
    if text is None:
        return None
    match = _SIZE.fullmatch(str(text).upper())
    if not match or match.group(2) not in _UNITS:
        raise ConfigError(f"{key} must look like '4GiB' or '500MB', got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_memory(size: int) -> str:
    """Bytes as ``3.66 GB`` (powers of 1000, as the model's figures are given)."""
    for unit, scale in (("TB", 1000**4), ("GB", GB), ("MB", 1000**2), ("kB", 1000)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size} B"


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


def _proc_kib(path: str, field: str) -> int | None:
    """A ``Field:   123 kB`` value of a /proc file, in bytes (None where there is none)."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory() -> int | None:
    """MemAvailable of ``/proc/meminfo`` in bytes (None where there is none)."""
    return _proc_kib("/proc/meminfo", "MemAvailable")


def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory to its current one (Linux: ``VmHWM``,
    by writing 5 to ``/proc/self/clear_refs``); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def peak_rss() -> int | None:
    """This process's peak resident memory in bytes (``VmHWM``), None when unknown."""
    return _proc_kib("/proc/self/status", "VmHWM")


def default_max_memory(workers: int) -> int | None:
    """The memory a run's jobs may use together when ``max_memory`` is not set.

    What is available now (MemAvailable) less :data:`WORKER_BASE` for each of the
    ``workers`` processes about to start; None (no limit) where it cannot be read.
    """
    available = available_memory()
    if available is None:
        return None
    return max(0, available - workers * WORKER_BASE)


# glibc's malloc: mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.malloc_trim  # noqa: B018 (glibc only)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Let this process reuse the memory it frees instead of giving it back at once.

    glibc returns every array above its mmap threshold to the system when it is freed, so
    the next array of that size is page-faulted in again: on these machines ~6 us a page,
    which made a block-wise pass over a full-frame dark 4x slower than its arithmetic
    (2.7 s against 0.6 s for 84 million float32 samples, the same call repeated). Large
    allocations then come from the heap and are reused; :func:`release_memory` gives
    the memory back (after each job, and before the memory in use is measured). Called
    once in each worker. False where the C library is not glibc (nothing changes).
    """
    libc = _libc()
    if libc is None:
        return False
    big = 2**30
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, big)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * big))


def release_memory() -> None:
    """Give the memory freed so far back to the system (glibc ``malloc_trim``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def resident_memory() -> int:
    """Resident set size of this process in bytes, after :func:`release_memory` (0 when
    unknown): what the process holds, not what it freed and kept."""
    release_memory()
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0

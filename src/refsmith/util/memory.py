"""Memory sizes and this machine's memory: parsing ``4GiB``, what is free, what a process
holds, and glibc's allocator kept from giving freed memory back at once.

Reference-file and combine jobs get their recipe's budget (``execution.reffile_memory``,
``recipes.<name>.memory``, parsed here); calibration jobs an estimate from
:mod:`refsmith.detector1.memory`. The local executor admits jobs while their estimates fit
in ``execution.max_memory`` (default :func:`default_max_memory`). See docs/running.md,
"Memory".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re

from refsmith.errors import ConfigError

__all__ = [
    "WORKER_BASE",
    "available_memory",
    "default_max_memory",
    "format_memory",
    "keep_freed_memory",
    "parse_memory",
    "peak_rss",
    "release_memory",
    "reset_peak_rss",
    "resident_memory",
]

GB = 1000**3

WORKER_BASE = 512 * 1024**2
"""Memory reserved for each worker process itself (not part of any job's estimate).

A worker measured 0.25 GB resident right after ``import jwst``, 0.37 GB once the plug-ins'
compiled kernels are loaded too (numba and llvmlite; VmHWM, jwst 3.0.0, on a 2-core
24 GiB machine); 0.5 GiB leaves room for what it keeps between jobs (CRDS and
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

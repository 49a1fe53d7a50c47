"""Blocks of rows of a group's inputs, sized to the job's memory budget.

A plug-in that must hold only part of its inputs at once (a D+ group of 50 full-frame
100-group ramps is 80 GB) asks :meth:`GroupInputs.blocks <refsmith.plugins.inputs.
GroupInputs.blocks>` for aligned blocks: the same rows of every input, read from disk for
that block only (:mod:`.fitsrows`), data as float32 with DO_NOT_USE and SATURATED samples
set to NaN. The number of rows per block follows from the job's memory budget, what the
worker already holds, and how many copies of the block the plug-in says it works with.
Per-pixel results therefore never depend on the block size; statistics over the whole
frame (pooled thresholds) come from :func:`sample_rows`, a fixed set of rows.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from refsmith.plugins.fitsrows import ImageRows
from refsmith.util.memory import format_memory, resident_memory

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MEMORY", "MASKED_GROUP_FLAGS", "Block", "MemoryBudgetError", "RampBlock",
           "amplifier_map", "block_rows", "job_memory", "memory_budget", "ramp_row_bytes",
           "read_block", "resident_memory", "sample_rows"]

DO_NOT_USE = 1
SATURATED = 2
REFERENCE_PIXEL = 2**31
MASKED_GROUP_FLAGS = DO_NOT_USE | SATURATED
"""GROUPDQ bits whose samples a block sets to NaN (PIXELDQ: DO_NOT_USE)."""

DEFAULT_MEMORY = 2 * 2**30
"""A job's memory budget when none is given (``execution.reffile_memory``'s default)."""
MIN_ROWS = 8  # fewer rows per block: the per-read overhead dominates; ask for more memory
BLOCK_BYTES = 64 * 2**20
"""A block's size, with its copies, above which more rows are not read at once, whatever
the budget allows. Memory a job touches for the first time is what costs: 2-9 s a GiB on
a VM that hands freed memory back to its host (ours), against ~0.1 s a GiB reused; blocks
as big as a 2 GiB budget made the full-frame gain and bad-pixel jobs 3x slower than 64 MB
blocks (docs/design.md)."""
SAMPLE_ROWS = 256  # rows read for frame-wide statistics, in runs of SAMPLE_RUN rows
SAMPLE_RUN = 8


_JOB_MEMORY: ContextVar[int] = ContextVar("refsmith_job_memory", default=0)


class MemoryBudgetError(ValueError):
    """The job's memory budget cannot hold even the smallest block."""


def job_memory() -> int:
    """The memory budget (bytes) of the job this process runs (:func:`memory_budget`)."""
    return _JOB_MEMORY.get() or DEFAULT_MEMORY


@contextlib.contextmanager
def memory_budget(nbytes: int) -> Iterator[None]:
    """Run a job with this memory budget (0: :data:`DEFAULT_MEMORY`)."""
    token = _JOB_MEMORY.set(int(nbytes or 0))
    try:
        yield
    finally:
        _JOB_MEMORY.reset(token)


@dataclass(frozen=True)
class RampBlock:
    """Rows of one input.

    Attributes
    ----------
    data : ndarray
        float32 ``(nints, ngroups, rows, nx)`` of a ramp (the selected groups), or
        ``(rows, nx)`` of a rate image; NaN where the pixel is DO_NOT_USE or the group is
        DO_NOT_USE or SATURATED.
    pixeldq : ndarray
        uint32 ``(rows, nx)`` (zeros when the file has none).
    groupdq : ndarray
        uint8 like ``data`` (zeros when the file has none).
    """

    data: np.ndarray
    pixeldq: np.ndarray
    groupdq: np.ndarray

    @property
    def reference_pixels(self) -> np.ndarray:
        """Pixels flagged REFERENCE_PIXEL (by dq_init)."""
        return (self.pixeldq & REFERENCE_PIXEL) != 0

    @property
    def is_ramp(self) -> bool:
        return self.data.ndim == 4


@dataclass(frozen=True)
class Block:
    """The same rows of several inputs.

    Attributes
    ----------
    rows : ndarray
        The frame rows (0-based) held, in order.
    ramps : tuple of RampBlock
        One per input asked for, in that order.
    """

    rows: np.ndarray
    ramps: tuple[RampBlock, ...]

    @property
    def where(self) -> slice | np.ndarray:
        """Index of these rows in a frame-sized array (a slice when contiguous)."""
        if self.rows.size and self.rows[-1] - self.rows[0] + 1 == self.rows.size:
            return slice(int(self.rows[0]), int(self.rows[-1]) + 1)
        return self.rows

    @property
    def reference_pixels(self) -> np.ndarray:
        """Reference pixels of the first input's rows."""
        return self.ramps[0].reference_pixels


@functools.lru_cache(maxsize=256)
def _extensions(path: str) -> Mapping[str, ImageRows]:
    from astropy.io import fits

    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdus:
        names = [h.name for h in hdus if h.is_image and h.header.get("NAXIS", 0) >= 2]
    return {name: ImageRows(path, name) for name in dict.fromkeys(names)}


def image(path: str, name: str) -> ImageRows | None:
    """The named image extension of a file (None when absent)."""
    return _extensions(str(path)).get(name)


def science(path: str) -> ImageRows:
    """The SCI extension of a file (ValueError naming the file when absent)."""
    found = image(path, "SCI")
    if found is None:
        raise ValueError(f"{path} has no SCI image extension")
    return found


def read_block(path: str, rows: np.ndarray, groups: Any = None) -> RampBlock:
    """Rows of one file: SCI as float32, PIXELDQ (or a 2-D DQ) and GROUPDQ; masked."""
    sci = science(path)
    ramp = len(sci.shape) == 4
    planes = (slice(None), groups if groups is not None else slice(None)) if ramp else ()
    data = sci.read(rows, planes, dtype=np.float32)
    shape2d = (len(rows), sci.shape[-1])
    pixel = image(path, "PIXELDQ") or _dq2d(path, sci.shape[-2:])
    pixeldq = (pixel.read(rows, dtype=np.uint32) if pixel is not None
               else np.zeros(shape2d, np.uint32))
    group = image(path, "GROUPDQ")
    if group is not None and ramp and group.shape == sci.shape:
        groupdq = group.read(rows, planes, dtype=np.uint8)
        bad = (groupdq & MASKED_GROUP_FLAGS) != 0
        if bad.any():
            data[bad] = np.nan
    else:
        groupdq = np.zeros(data.shape, np.uint8)
    dead = (pixeldq & DO_NOT_USE) != 0
    if dead.any():
        data[..., dead] = np.nan
    return RampBlock(data=data, pixeldq=pixeldq, groupdq=groupdq)


def _dq2d(path: str, shape: tuple[int, ...]) -> ImageRows | None:
    dq = image(path, "DQ")
    return dq if dq is not None and dq.shape == tuple(shape) else None


def plane_count(path: str, groups: Any = None) -> int:
    """How many (integration, group) planes a block of this file holds."""
    shape = science(path).shape
    if len(shape) < 4:
        return int(np.prod(shape[:-2], dtype=np.int64))
    chosen = np.arange(shape[1])[groups if groups is not None else slice(None)]
    return int(shape[0] * np.atleast_1d(chosen).size)


def ramp_row_bytes(paths: Sequence[str], groups: Any = None) -> int:
    """Bytes one row of a block of these files takes (float32 data, uint8 GROUPDQ, PIXELDQ)."""
    nx = science(paths[0]).shape[-1]
    return sum(plane_count(p, groups) * nx * 5 + nx * 4 for p in paths)


def block_rows(row_bytes: float, ny: int, *, reserve: int = 0, budget: int | None = None,
               what: str = "this job") -> int:
    """Rows per block so that blocks of ``row_bytes`` a row fit in the job's budget.

    ``row_bytes`` counts everything the caller holds per row of a block (the block times
    its working copies); what this process holds now and ``reserve`` (e.g. the output
    arrays) are taken off the budget (default :func:`job_memory`) first. Blocks hold at
    most :data:`BLOCK_BYTES` (or :data:`MIN_ROWS` rows when one row is bigger): the budget
    bounds a block, it is not a size to reach.

    Raises
    ------
    MemoryBudgetError
        When not even :data:`MIN_ROWS` rows fit; the message says how much is needed.
    """
    budget = job_memory() if budget is None else budget
    held = resident_memory() + reserve
    rows = int((budget - held) // row_bytes) if row_bytes else ny
    if rows < min(MIN_ROWS, ny):
        needed = held + row_bytes * min(MIN_ROWS, ny)
        raise MemoryBudgetError(
            f"{what} needs at least {_gib(needed)} of memory ({_gib(held)} held before the "
            f"first block, {format_memory(int(row_bytes))} per row of the frame), its budget is "
            f"{_gib(budget)}: raise recipes.<name>.memory or execution.reffile_memory")
    size = min(rows, ny, max(int(BLOCK_BYTES // row_bytes) if row_bytes else ny, MIN_ROWS))
    log.info("%s: %d of %d rows at a time (%d in the budget %s, %s held, %s a row)", what,
             size, ny, min(rows, ny), _gib(budget), _gib(held), format_memory(int(row_bytes)))
    return size


def row_chunks(rows: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """``rows`` in consecutive pieces of at most ``size``."""
    for start in range(0, len(rows), max(1, size)):
        yield rows[start:start + size]


def sample_rows(ny: int) -> np.ndarray:
    """The fixed rows frame-wide statistics are taken from: 256 rows, in runs of 8.

    Runs of 8 rows evenly spread over the frame (every 64th run of a full frame), so a
    plane is read with 32 reads rather than 256. Depends only on the frame size, so pooled
    statistics, and everything computed with them, do not depend on the block size.
    """
    if ny <= SAMPLE_ROWS:
        return np.arange(ny)
    runs = SAMPLE_ROWS // SAMPLE_RUN
    starts = np.linspace(0, ny - SAMPLE_RUN, runs).astype(np.int64)
    return (starts[:, None] + np.arange(SAMPLE_RUN)[None, :]).ravel()


def amplifier_map(header: Mapping[str, Any], nx: int) -> np.ndarray:
    """Amplifier index of each of the ``nx`` columns.

    Near-infrared detectors read through NOUTPUTS outputs, each a strip of
    ``2048 / NOUTPUTS`` columns of the full frame; a subarray sees the strips it covers.
    MIRI's four outputs read interleaved columns (column modulo 4). Without NOUTPUTS (or
    with 1) every column is one amplifier.
    """
    def number(keyword: str, default: int) -> int:
        try:
            return int(header.get(keyword, default))
        except (TypeError, ValueError):
            return default

    outputs = number("NOUTPUTS", 1)
    start = number("SUBSTRT1", 1) - 1
    columns = np.arange(nx) + start
    if str(header.get("INSTRUME", "")).strip().upper() == "MIRI":
        return (columns % 4).astype(np.int64) if outputs > 1 else np.zeros(nx, np.int64)
    if outputs <= 1:
        return np.zeros(nx, np.int64)
    strip = 2048 // outputs
    amps = np.clip(columns // strip, 0, outputs - 1)
    return (amps - amps.min()).astype(np.int64)


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB" if math.isfinite(value) else "?"

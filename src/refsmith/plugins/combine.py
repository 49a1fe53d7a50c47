"""Combiners: individual reference files of one recipe x partition -> the final file.

Arrays (``data``) are combined pixel by pixel with a clipped mean (default), median or
mean over the files; an ``err`` array is propagated (``sqrt(sum err**2) / n`` over the
values used; the median's is ``sqrt(pi / 2)`` times the mean's); ``dq`` arrays of
non-mask models are OR-ed. A plug-in whose files hold a noise (``combine_as =
"variance"``, the read noise) is combined as variances: the root of the combined squares.
Masks combine by flag vote: a bit is set in the final mask when at least ``vote_fraction``
of the files set it. The metadata of the first file is kept.

The files are read block by block of rows (:mod:`.fitsrows`), as many rows at a time as
the job's memory budget allows (at most :data:`~refsmith.plugins.blocks.BLOCK_BYTES` a
block), so ten 100-group full-frame darks combine in the memory of a few of their rows;
the clipped mean's thresholds come from a pooled scatter over fixed sample rows, so the
result does not depend on the block size.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from refsmith.plugins.blocks import block_rows, row_chunks, sample_rows
from refsmith.plugins.fitsrows import ImageRows
from refsmith.plugins.stats import clipped_stats, pooled_sigma

__all__ = ["combine_arrays", "combine_files", "vote_flags"]

_EXTENSIONS = {"data": "SCI", "err": "ERR", "dq": "DQ"}
# bytes per file and per pixel of a block (data and err stacks and their working copies),
# and per pixel whatever the files (the clipping's results, the combined data and error)
_PER_FILE, _PER_PIXEL = 16, 64


def combine_arrays(
    stack: np.ndarray, method: str, sigma: float = 3.0, errors: np.ndarray | None = None,
    floor: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Combine ``stack`` (files along axis 0); return the combined array and its error.

    Parameters
    ----------
    stack : ndarray
        ``(nfiles, ...)``.
    method : str
        ``clipped_mean`` (a plain mean with fewer than 3 files), ``median`` or ``mean``.
    sigma : float
        Clip level of ``clipped_mean``.
    errors : ndarray, optional
        Per-file uncertainties, like ``stack``.
    floor : ndarray or float
        The pooled scatter between files (see :func:`~refsmith.plugins.stats.clipped_stats`).

    Returns
    -------
    combined, error : ndarray, ndarray or None
    """
    stack = np.asarray(stack, dtype=np.float32)
    if method not in ("clipped_mean", "median", "mean"):
        raise ValueError(f"unknown combine method {method!r} (clipped_mean, median, mean)")
    if len(stack) == 1:  # one file: itself
        return stack[0], None if errors is None else np.asarray(errors[0], np.float32)
    clip = sigma if method == "clipped_mean" and stack.shape[0] >= 3 else 0.0
    result = clipped_stats(stack, floor, clip, with_keep=errors is not None)
    combined = result.mean
    if method == "median":
        with np.errstate(invalid="ignore"):
            combined = np.nanmedian(stack, axis=0)
    if errors is None:
        return combined.astype(np.float32), None
    used = result.keep
    with np.errstate(invalid="ignore", divide="ignore"):
        squares = np.where(used, np.asarray(errors, np.float32) ** 2, 0.0)
        error = np.sqrt(squares.sum(axis=0, dtype=np.float64)) / result.count
    if method == "median":
        error = error * math.sqrt(math.pi / 2.0)
    return combined.astype(np.float32), error.astype(np.float32)


def vote_flags(masks: Sequence[np.ndarray] | np.ndarray, fraction: float) -> np.ndarray:
    """Bits set in at least ``fraction`` of ``masks`` (unsigned integer DQ arrays)."""
    stack = np.asarray(masks).astype(np.uint32)
    needed = max(math.ceil(fraction * len(stack) - 1e-9), 1)
    result = np.zeros(stack.shape[1:], np.uint32)
    for bit in range(32):
        value = np.uint32(1 << bit)
        votes = np.count_nonzero(stack & value, axis=0)
        result[votes >= needed] |= value
    return result


def combine_files(individual_files: Sequence[str], params: Any, output_path: str | None, *,
                  combine_as: str = "value") -> Any:
    """The default combiner of every built-in plug-in (see the module docstring).

    Parameters
    ----------
    individual_files : sequence of str
        Files of the same reference type, shape and setup.
    params : PluginParams
        Uses ``combine``, ``combine_sigma`` and ``vote_fraction``.
    output_path : str or None
        Where to write the final model; None: return it (unsaved).
    combine_as : str
        ``value``, or ``variance`` for files that hold a noise (combined as squares).

    Returns
    -------
    DataModel or None
        The final model when ``output_path`` is None.
    """
    from astropy.io import fits

    files = [str(p) for p in individual_files]
    if not files:
        raise ValueError("no individual files to combine")
    kinds = {str(fits.getheader(p, 0).get("DATAMODL", "")).strip() for p in files}
    if len(kinds) != 1:
        raise ValueError(f"the individual files are of different models: {sorted(kinds)}")
    result, names = _template(files[0], kinds.pop())
    readers = {n: [ImageRows(p, _EXTENSIONS[n]) for p in files] for n in names}
    for name, found in readers.items():
        shapes = {r.shape for r in found}
        if len(shapes) != 1:
            raise ValueError(f"the individual files' {name} arrays differ in shape: "
                             f"{sorted(shapes)}")
    if len(files) == 1:  # one file (a D+ recipe's partition): itself, as combine_arrays
        outputs = _arrays_of(files[0], {n: r[0] for n, r in readers.items()})
    else:
        outputs = _combine(readers, params, combine_as, type(result).__name__ == "MaskModel")
    for name, array in outputs.items():
        setattr(result, name, array)
    if output_path is None:
        return result
    result.save(output_path)
    result.close()
    return None


def _combine(readers: dict[str, list[ImageRows]], params: Any, combine_as: str,
             is_mask: bool) -> dict[str, np.ndarray]:
    """The combined arrays of several files, block by block of rows."""
    outputs = {n: np.zeros(r[0].shape, np.uint32 if n == "dq" else np.float32)
               for n, r in readers.items()}
    # rows per block, before any output is touched (then they are not resident yet): per
    # row, the stacks of every file and the working copies, for the largest array
    files = len(next(iter(readers.values())))
    ny, nx = next(iter(readers.values()))[0].shape[-2:]
    planes = max(int(np.prod(r[0].planes, dtype=np.int64)) for r in readers.values())
    size = block_rows(planes * nx * (files * _PER_FILE + _PER_PIXEL), ny,
                      reserve=sum(a.nbytes for a in outputs.values()),
                      what=f"combining {files} files")
    if "data" in readers:
        _combine_data(readers["data"], readers.get("err"), outputs, params, combine_as, size)
    if "dq" in readers:
        dq_readers = readers["dq"]
        for rows in row_chunks(np.arange(ny), size):
            masks = np.stack([r.read(rows, dtype=np.uint32) for r in dq_readers])
            outputs["dq"][..., rows, :] = (vote_flags(masks, params.vote_fraction) if is_mask
                                           else np.bitwise_or.reduce(masks, axis=0))
    return outputs


def _arrays_of(path: str, readers: dict[str, ImageRows]) -> dict[str, np.ndarray]:
    """The arrays of a lone file, for a final file that holds them as they are.

    Float32 arrays stored unscaled (``ImageRows.dtype`` float32) are memory-mapped: the
    final file is written from the page cache, with no copy in memory (a full-frame
    20-group dark's SCI and ERR are 670 MB); others (a uint32 DQ is stored with BZERO)
    are read and converted.
    """
    from astropy.io import fits

    arrays = {}
    with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdus:
        for name, reader in readers.items():
            if name != "dq" and reader.dtype == np.float32:
                arrays[name] = hdus[reader.extension].data  # the map outlives the file
            else:
                arrays[name] = reader.read(slice(0, reader.shape[-2]),
                                           dtype=np.uint32 if name == "dq" else np.float32)
    return arrays


def _template(path: str, kind: str = "") -> tuple[Any, list[str]]:
    """A model of ``path``'s class (``kind``, its DATAMODL) with its metadata and tables
    (``dq_def``), no arrays, and the names of its arrays to combine.

    The file is opened memory-mapped and unscaled, so no array is read: opened by name,
    a datamodel reads every array (2.2-4.6 s and 670 MB for a full-frame 20-group dark).
    A model with other image arrays, or of no known class, is opened by name.
    """
    from astropy.io import fits
    from stdatamodels.jwst import datamodels

    model_class = getattr(datamodels, kind, None) if kind else None
    with contextlib.ExitStack() as stack:
        if isinstance(model_class, type):
            hdus = stack.enter_context(
                fits.open(path, memmap=True, do_not_scale_image_data=True))
            first = stack.enter_context(model_class(hdus))
        else:
            model_class, first = None, stack.enter_context(datamodels.open(path))
        result = type(first)()  # metadata of the first file, no history, no arrays yet
        result.update(first)
        names = [n for n in _EXTENSIONS if n in first.instance]
        for name in first.instance:
            if name in ("meta", "history", *names):
                continue
            value = getattr(first, name)  # e.g. dq_def
            if model_class and isinstance(value, np.ndarray) and value.dtype.names is None:
                return _template(path)  # an image array: its values must be scaled
            setattr(result, name, np.array(value) if isinstance(value, np.ndarray) else value)
    del first
    gc.collect()  # a datamodel's arrays are freed with its reference cycles, not before
    return result, names


def _combine_data(data: list[ImageRows], err: list[ImageRows] | None,
                  outputs: dict[str, np.ndarray], params: Any, combine_as: str,
                  size: int) -> None:
    """Combine SCI (and ERR) of the files, ``size`` rows at a time, into ``outputs``."""
    ny, nx = data[0].shape[-2:]
    variance = combine_as == "variance"

    def stacks(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        values = np.stack([r.read(rows, dtype=np.float32) for r in data])
        errors = (np.stack([r.read(rows, dtype=np.float32) for r in err])
                  if err is not None else None)
        if variance:  # a noise: combine its square, the error of the square is 2 x err
            if errors is not None:
                errors *= 2 * np.abs(values)
            values *= values
        return values, errors

    floor: np.ndarray | float = 0.0
    if params.combine == "clipped_mean" and len(data) >= 3:
        spreads = []
        for rows in row_chunks(sample_rows(ny), size):
            values, _ = stacks(rows)
            spreads.append(np.sqrt(clipped_stats(values, 0.0, sigma=0.0).variance))
        spread = np.concatenate(spreads, axis=-2)
        pooled = pooled_sigma(spread, np.zeros(nx, np.int64), len(data) - 1)
        floor = pooled[..., :1, None]  # (..., 1, 1): one scatter per plane
    for rows in row_chunks(np.arange(ny), size):
        values, errors = stacks(rows)
        combined, error = combine_arrays(values, params.combine, params.combine_sigma,
                                         errors, floor)
        if variance:
            with np.errstate(invalid="ignore", divide="ignore"):
                combined = np.sqrt(combined)
                if error is not None:
                    error = error / (2 * combined)
        outputs["data"][..., rows, :] = combined
        if error is not None and "err" in outputs:
            outputs["err"][..., rows, :] = error

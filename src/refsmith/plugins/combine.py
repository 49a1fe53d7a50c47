"""Combiners: individual reference files of one recipe x partition -> the final file.

Arrays (``data``) are combined pixel by pixel with a clipped mean (default), median or
mean over the files; an ``err`` array is propagated (``sqrt(sum err**2) / n`` over the
values used; the median's is ``sqrt(pi / 2)`` times the mean's); ``dq`` arrays of
non-mask models are OR-ed. Masks combine by flag vote: a bit is set in the final mask when
at least ``vote_fraction`` of the files set it. The metadata of the first file is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from refsmith.plugins.stats import clip_mask, clipped_mean

__all__ = ["combine_arrays", "combine_files", "vote_flags"]


def combine_arrays(
    stack: np.ndarray, method: str, sigma: float = 3.0, errors: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Combine ``stack`` (files along axis 0); return the combined array and its error.

    Parameters
    ----------
    stack : ndarray
        ``(nfiles, ...)``.
    method : str
        ``clipped_mean``, ``median`` or ``mean``.
    sigma : float
        Clip level of ``clipped_mean``.
    errors : ndarray, optional
        Per-file uncertainties, like ``stack``.

    Returns
    -------
    combined, error : ndarray, ndarray or None
    """
    stack = np.asarray(stack, dtype=np.float64)
    finite = np.isfinite(stack)
    if method == "clipped_mean" and stack.shape[0] >= 3:
        combined = clipped_mean(stack, axis=0, sigma=sigma, maxiters=3)[0]
        used = finite & clip_mask(stack, 0, sigma, 3)
    elif method == "median":
        combined = np.nanmedian(stack, axis=0)
        used = finite
    elif method in ("mean", "clipped_mean"):
        combined = np.nanmean(stack, axis=0)
        used = finite
    else:
        raise ValueError(f"unknown combine method {method!r} (clipped_mean, median, mean)")
    if errors is None:
        return combined.astype(np.float32), None
    count = used.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.sqrt(np.where(used, np.asarray(errors, np.float64) ** 2, 0.0).sum(axis=0))
        error = error / count
    if method == "median":
        error = error * math.sqrt(math.pi / 2.0)
    return combined.astype(np.float32), error.astype(np.float32)


def vote_flags(masks: Sequence[np.ndarray], fraction: float) -> np.ndarray:
    """Bits set in at least ``fraction`` of ``masks`` (unsigned integer DQ arrays)."""
    stack = np.asarray(masks).astype(np.uint64)
    needed = math.ceil(fraction * len(masks) - 1e-9)
    result = np.zeros(stack.shape[1:], np.uint64)
    for bit in range(32):
        value = np.uint64(1 << bit)
        votes = ((stack & value) != 0).sum(axis=0)
        result[votes >= max(needed, 1)] |= value
    return result.astype(np.uint32)


def combine_files(individual_files: Sequence[str], params: Any, output_path: str) -> None:
    """The default combiner of every built-in plug-in (see the module docstring).

    Parameters
    ----------
    individual_files : sequence of str
        Files of the same reference type, shape and setup.
    params : PluginParams
        Uses ``combine``, ``combine_sigma`` and ``vote_fraction``.
    output_path : str
        Where to write the final model.
    """
    from stdatamodels.jwst import datamodels

    if not individual_files:
        raise ValueError("no individual files to combine")
    models = [datamodels.open(path) for path in individual_files]
    try:
        kinds = {type(m).__name__ for m in models}
        if len(kinds) != 1:
            raise ValueError(f"the individual files are of different models: {sorted(kinds)}")
        first = models[0]
        result = type(first)()  # metadata of the first file, its arrays, no history
        result.update(first)
        for name in first.instance:
            if name not in ("meta", "history"):
                setattr(result, name, getattr(first, name))
        is_mask = type(first).__name__ == "MaskModel"
        for name in ("data", "err", "dq"):
            if name not in first.instance:
                continue
            shapes = {getattr(m, name).shape for m in models}
            if len(shapes) != 1:
                raise ValueError(f"the individual files' {name} arrays differ in shape: "
                                 f"{sorted(shapes)}")
        if "data" in first.instance:
            errors = (np.array([m.err for m in models]) if "err" in first.instance else None)
            combined, error = combine_arrays(np.array([m.data for m in models]),
                                             params.combine, params.combine_sigma, errors)
            result.data = combined.astype(first.data.dtype)
            if error is not None:
                result.err = error
        if "dq" in first.instance:
            masks = [m.dq for m in models]
            if is_mask:
                result.dq = vote_flags(masks, params.vote_fraction)
            else:
                result.dq = np.bitwise_or.reduce(np.array(masks, np.uint32), axis=0)
        result.save(output_path)
        result.close()
    finally:
        for model in models:
            model.close()

"""``bad_pixel_mask`` (DF+): dead and low-QE pixels from flats, hot and noisy from darks."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from refsmith.plugins.base import PluginParams, ReffilePlugin
from refsmith.plugins.blocks import RampBlock
from refsmith.plugins.builtin._common import dq_def, flag_value, require_ramps
from refsmith.plugins.inputs import GroupInputs
from refsmith.plugins.stats import robust_sigma, robust_zscore

__all__ = ["BadPixelMaskPlugin", "BadPixelParams", "ramp_slopes"]

COPIES = 2.5  # the blocks, the stacked darks, slopes and sums (small)


class BadPixelParams(PluginParams):
    """Parameters of :class:`BadPixelMaskPlugin`."""

    hot_sigma: float = Field(10.0, gt=0, description="hot: dark current this many sigma "
                             "above the median (both the map's robust sigma and the pixel's "
                             "own uncertainty)")
    noisy_sigma: float = Field(8.0, gt=0, description="noisy: CDS noise this many robust "
                                                      "sigma above the median")
    dead_fraction: float = Field(0.1, ge=0, le=1, description="dead: flat response below "
                                 "this fraction of the median")
    low_qe_fraction: float = Field(0.6, ge=0, le=1, description="low QE: flat response "
                                   "below this fraction of the median (and not dead)")
    noisy_flag: str = Field("UNRELIABLE_SLOPE", description="DQ flag name of noisy pixels")
    do_not_use: list[str] = Field(["DEAD", "HOT", "UNRELIABLE_SLOPE"],
                                  description="flags that also set DO_NOT_USE")

    @field_validator("noisy_flag")
    @classmethod
    def _flag(cls, value: str) -> str:
        flag_value(value)
        return value.upper()

    @field_validator("do_not_use")
    @classmethod
    def _flags(cls, value: list[str]) -> list[str]:
        for name in value:
            flag_value(name)
        return [v.upper() for v in value]


def ramp_slopes(ramps: list[RampBlock], times: np.ndarray, *, noise: bool = True
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Least-squares slope (DN/s) of every integration, ``(n, rows, nx)``; CDS noise.

    The CDS noise (with ``noise``) is the standard deviation of the group-to-group
    differences about their per-integration mean, over every integration (``(rows, nx)``).
    Pixels without missing (NaN) groups, nearly all, take one matrix product (slopes) and
    sums over the groups, one group at a time (noise); the others leave their missing
    groups out of each fit (:func:`_with_gaps`).
    """
    data = np.concatenate([r.data for r in ramps]) if len(ramps) > 1 else ramps[0].data
    nints, ngroups = data.shape[:2]
    if ngroups < 2:
        raise ValueError("slopes need at least 2 groups per integration")
    t = np.asarray(times[:ngroups], np.float64)
    weights = ((t - t.mean()) / np.sum((t - t.mean()) ** 2)).astype(np.float32)
    slopes = np.matmul(weights, data.reshape(nints, ngroups, -1)).reshape(
        nints, *data.shape[2:])
    spread = None
    if noise:
        squares = np.zeros_like(slopes)
        step = np.empty_like(slopes)
        for group in range(1, ngroups):
            np.subtract(data[:, group], data[:, group - 1], out=step)
            np.multiply(step, step, out=step)
            squares += step
        rise = (data[:, -1] - data[:, 0]).astype(np.float64)  # the sum of each ramp's steps
        with np.errstate(invalid="ignore", divide="ignore"):
            residual = (squares.sum(axis=0, dtype=np.float64) -
                        (rise * rise).sum(axis=0) / (ngroups - 1))
            spread = np.sqrt(np.maximum(residual, 0.0) / (nints * (ngroups - 1) - 1))
    gaps = np.isnan(slopes).any(axis=0)
    if gaps.any():
        slopes[:, gaps], gap_noise = _with_gaps(data[..., gaps], t)
        if spread is not None:
            spread[gaps] = gap_noise
    return slopes, spread


def _with_gaps(data: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ramp_slopes` of ``(n, ngroups, m)`` pixels with missing groups."""
    valid = ~np.isnan(data)
    t = np.where(valid, times[None, :, None], 0.0)
    y = np.where(valid, data, 0.0)
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        slopes = ((n * (t * y).sum(axis=1) - t.sum(axis=1) * y.sum(axis=1)) /
                  (n * (t * t).sum(axis=1) - t.sum(axis=1) ** 2))
        steps = np.diff(data, axis=1)
        steps -= np.nanmean(steps, axis=1, keepdims=True)
        noise = np.nanstd(steps.reshape(-1, data.shape[-1]), axis=0, ddof=1)
    return np.where(n >= 2, slopes, np.nan), noise


class BadPixelMaskPlugin(ReffilePlugin):
    """Bad pixel mask with the standard JWST flag names.

    From the darks: per-pixel dark current (median over integrations of least-squares
    slopes) -> HOT where it exceeds the median by ``hot_sigma`` times both the map's robust
    sigma and the pixel's own standard error; CDS noise -> ``noisy_flag`` where it is
    ``noisy_sigma`` robust sigma above the median. From the flats (dark current
    subtracted, normalised by the median): DEAD below ``dead_fraction``, LOW_QE below
    ``low_qe_fraction``. Reference pixels get REFERENCE_PIXEL only. dq_init ORs the mask
    into every exposure's PIXELDQ. Inputs: ``linearity-`` ramps.
    """

    name = "bad_pixel_mask"
    reftype = "mask"
    imtypes = "DF+"
    steps = ("linearity-",)
    description = "Bad pixel mask: dead/low QE from flats, hot/noisy from darks"
    Params = BadPixelParams

    def make(self, group: GroupInputs, params: BadPixelParams, output_path: str) -> Any:
        from stdatamodels.jwst import datamodels

        darks, flats = group.require("D", 1), group.require("F", 1)
        require_ramps([*darks, *flats], "a bad pixel mask", self.steps[0], min_groups=2)
        ny, nx = group.frame([*darks, *flats])
        dark, own_error, noise, flat = (np.empty((ny, nx), np.float32)  # all rows written
                                        for _ in range(4))
        reference = np.zeros((ny, nx), bool)
        dark_times, flat_times = darks[0].group_times(), flats[0].group_times()
        held = 5 * dark.nbytes
        for block in group.blocks([*darks, *flats], copies=COPIES, reserve=held):
            here = block.where
            slopes, noise[here] = ramp_slopes(list(block.ramps[:len(darks)]), dark_times)
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
                dark[here] = (np.median(slopes, axis=0) if not np.isnan(slopes).any()
                              else np.nanmedian(slopes, axis=0))
                n = np.sum(np.isfinite(slopes), axis=0)
                own_error[here] = 1.2533 * np.nanstd(slopes, axis=0, ddof=1) / np.sqrt(n)
                flat_slopes, _ = ramp_slopes(list(block.ramps[len(darks):]), flat_times,
                                         noise=False)
                flat[here] = np.nanmean(flat_slopes, axis=0)
            reference[here] = block.reference_pixels
        science = ~reference
        excess = dark - np.nanmedian(dark[science])
        hot = (excess > params.hot_sigma * robust_sigma(dark[science])) & \
            (excess > params.hot_sigma * own_error)
        noisy = robust_zscore(noise, science) > params.noisy_sigma
        flat -= dark
        response = flat / np.nanmedian(flat[science])
        dead = ~(response >= params.dead_fraction)  # NaN (no usable data) counts as dead
        low_qe = (response < params.low_qe_fraction) & ~dead

        dq = np.zeros((ny, nx), np.uint32)
        names = ["DO_NOT_USE", "DEAD", "HOT", "LOW_QE", params.noisy_flag, "REFERENCE_PIXEL"]
        for name, where in (("DEAD", dead), ("HOT", hot), ("LOW_QE", low_qe),
                            (params.noisy_flag, noisy)):
            value = flag_value(name)
            if name in params.do_not_use:
                value |= flag_value("DO_NOT_USE")
            dq[where & science] |= np.uint32(value)
        dq[reference] = flag_value("REFERENCE_PIXEL")
        model = datamodels.MaskModel(dq=dq, dq_def=dq_def(names))
        return model  # the framework writes it once, with its metadata

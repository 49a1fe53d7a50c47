"""``bad_pixel_mask`` (DF+): dead and low-QE pixels from flats, hot and noisy from darks."""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from refsmith.plugins.base import PluginParams, ReffilePlugin
from refsmith.plugins.builtin._common import dq_def, flag_value, stack_integrations
from refsmith.plugins.inputs import GroupInputs, InputFile
from refsmith.plugins.stats import robust_sigma, robust_zscore

__all__ = ["BadPixelMaskPlugin", "BadPixelParams", "ramp_slopes"]


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


def ramp_slopes(files: list[InputFile]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares slope (DN/s) of every integration, ``(n, ny, nx)``; group times; CDS.

    Also returns the per-pixel CDS noise: standard deviation of the group-to-group
    differences about their per-integration mean.
    """
    stack, _ = stack_integrations(files)
    times = files[0].group_times()
    if stack.shape[1] < 2:
        raise ValueError("slopes need at least 2 groups per integration")
    t = times - times.mean()
    centred = stack - np.nanmean(stack, axis=1, keepdims=True)
    slopes = np.nansum(centred * t[None, :, None, None], axis=1) / np.sum(t * t)
    steps = np.diff(stack, axis=1)
    residual = steps - np.nanmean(steps, axis=1, keepdims=True)
    ny, nx = stack.shape[-2:]
    noise = np.nanstd(residual.reshape(-1, ny, nx), axis=0, ddof=1)
    return slopes, times, noise


class BadPixelMaskPlugin(ReffilePlugin):
    """Bad pixel mask with the standard JWST flag names.

    From the darks: per-pixel dark current (median over integrations of least-squares
    slopes) -> HOT where it exceeds the median by ``hot_sigma`` times both the map's robust
    sigma and the pixel's own standard error; CDS noise -> ``noisy_flag`` where it is
    ``noisy_sigma`` robust sigma above the median. From the flats (dark current
    subtracted, normalised by the median): DEAD below ``dead_fraction``, LOW_QE below
    ``low_qe_fraction``. Reference pixels get REFERENCE_PIXEL only. Inputs: ``linearity-``
    ramps.
    """

    name = "bad_pixel_mask"
    reftype = "mask"
    imtypes = "DF+"
    steps = ("linearity-",)
    description = "Bad pixel mask: dead/low QE from flats, hot/noisy from darks"
    Params = BadPixelParams

    def make(self, group: GroupInputs, params: BadPixelParams, output_path: str) -> None:
        from stdatamodels.jwst import datamodels

        darks, flats = group.require("D", 1), group.require("F", 1)
        reference = darks[0].read().reference_pixels
        science = ~reference
        dark_slopes, _, noise = ramp_slopes(darks)
        dark = np.nanmedian(dark_slopes, axis=0)
        n = np.sum(np.isfinite(dark_slopes), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            own_error = 1.2533 * np.nanstd(dark_slopes, axis=0, ddof=1) / np.sqrt(n)
        excess = dark - np.nanmedian(dark[science])
        hot = (excess > params.hot_sigma * robust_sigma(dark[science])) & \
            (excess > params.hot_sigma * own_error)
        noisy = robust_zscore(noise, science) > params.noisy_sigma
        flat = np.nanmean(ramp_slopes(flats)[0], axis=0) - dark
        response = flat / np.nanmedian(flat[science])
        dead = ~(response >= params.dead_fraction)  # NaN (no usable data) counts as dead
        low_qe = (response < params.low_qe_fraction) & ~dead

        dq = np.zeros(dark.shape, np.uint32)
        names = ["DO_NOT_USE", "DEAD", "HOT", "LOW_QE", params.noisy_flag, "REFERENCE_PIXEL"]
        for name, where in (("DEAD", dead), ("HOT", hot), ("LOW_QE", low_qe),
                            (params.noisy_flag, noisy)):
            value = flag_value(name)
            if name in params.do_not_use:
                value |= flag_value("DO_NOT_USE")
            dq[where & science] |= np.uint32(value)
        dq[reference] = flag_value("REFERENCE_PIXEL")
        model = datamodels.MaskModel(dq=dq, dq_def=dq_def(names))
        model.save(output_path)
        model.close()

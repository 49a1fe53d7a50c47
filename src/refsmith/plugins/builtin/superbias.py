"""``superbias`` (D+): clipped mean of the first group of every dark integration."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from refsmith.plugins.base import PluginParams, ReffilePlugin
from refsmith.plugins.builtin._common import dq_def, fill_nonfinite, flag_value
from refsmith.plugins.inputs import GroupInputs
from refsmith.plugins.stats import clipped_mean, robust_zscore

__all__ = ["SuperbiasParams", "SuperbiasPlugin"]


class SuperbiasParams(PluginParams):
    """Parameters of :class:`SuperbiasPlugin`."""

    sigma_clip: float = Field(3.0, ge=0, description="clip level over the first groups "
                                                     "(sigma; 0: plain mean)")
    unreliable_sigma: float = Field(
        10.0, gt=0, description="flag UNRELIABLE_BIAS where the scatter of a pixel's first "
                                "groups is this many robust sigma above the typical scatter")


class SuperbiasPlugin(ReffilePlugin):
    """Bias level (DN) per pixel with its uncertainty.

    SCI: sigma-clipped mean over every integration of every dark of the first group; ERR:
    clipped standard deviation / sqrt(number kept); DQ: UNRELIABLE_BIAS (+ DO_NOT_USE) where
    fewer than two values were usable or the scatter is abnormal. Inputs: ``dq_init-`` ramps
    (before superbias, so the bias is still in the data).
    """

    name = "superbias"
    reftype = "superbias"
    imtypes = "D+"
    steps = ("dq_init-",)
    description = "Superbias: clipped mean of the first group of darks"
    Params = SuperbiasParams

    def make(self, group: GroupInputs, params: SuperbiasParams, output_path: str) -> None:
        from stdatamodels.jwst import datamodels

        first_groups = []
        for item in group.require("D", 1):
            data = item.read().masked()
            if data.ndim != 4:
                raise ValueError(f"{item.role} {item.path} is not a ramp")
            first_groups.append(data[:, 0])
        if len({f.shape[1:] for f in first_groups}) != 1:
            raise ValueError("the darks of the group differ in size")
        stack = np.concatenate(first_groups, axis=0)
        mean, std, count = clipped_mean(stack, axis=0, sigma=params.sigma_clip)
        with np.errstate(invalid="ignore", divide="ignore"):
            err = std / np.sqrt(count)
        unreliable = (count < 2) | ~np.isfinite(mean) | ~np.isfinite(err)
        unreliable |= robust_zscore(std) > params.unreliable_sigma
        data, _ = fill_nonfinite(mean)
        err, _ = fill_nonfinite(err, 0.0)
        flags = flag_value("UNRELIABLE_BIAS") | flag_value("DO_NOT_USE")
        dq = np.where(unreliable, flags, 0).astype(np.uint32)
        model = datamodels.SuperBiasModel(
            data=data.astype(np.float32), err=err.astype(np.float32), dq=dq,
            dq_def=dq_def(["DO_NOT_USE", "UNRELIABLE_BIAS"]))
        model.save(output_path)
        model.close()

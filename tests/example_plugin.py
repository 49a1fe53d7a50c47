"""The example plug-in of docs/plugins.md (kept identical; exercised by test_plugins.py)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from refsmith.plugins import GroupInputs, PluginParams, ReffilePlugin


class MedianBiasParams(PluginParams):
    """Parameters of MedianBias (defaults and help text show in `refsmith plugins`)."""

    min_darks: int = Field(1, ge=1, description="fail when the group has fewer darks")
    offset: float = Field(0.0, description="DN added to the bias (an example parameter)")


class MedianBias(ReffilePlugin):
    """Superbias: per-pixel median of the first group of every dark integration."""

    name = "median_bias"
    reftype = "superbias"
    imtypes = "D+"
    steps = ("dq_init-",)
    description = "Median of the first group of darks"
    Params = MedianBiasParams

    def make(self, group: GroupInputs, params: MedianBiasParams, output_path: str) -> None:
        from stdatamodels.jwst import datamodels

        darks = group.require("D", params.min_darks)
        ny, nx = group.frame(darks)
        bias = np.full((ny, nx), np.nan, np.float32)
        # the first group of every integration, the same rows of every dark at a time, as
        # many rows as the job's memory budget allows (DO_NOT_USE and SATURATED are NaN)
        for block in group.blocks(darks, groups=slice(0, 1), reserve=bias.nbytes):
            first_groups = np.concatenate([ramp.data[:, 0] for ramp in block.ramps])
            bias[block.where] = np.nanmedian(first_groups, axis=0) + params.offset
        model = datamodels.SuperBiasModel(
            data=bias,
            err=np.zeros_like(bias),
            dq=np.zeros(bias.shape, np.uint32),
        )
        model.save(output_path)  # the framework adds metadata, HISTORY, validates, moves it

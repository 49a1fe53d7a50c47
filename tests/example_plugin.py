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
        first_groups = np.concatenate([dark.read().masked()[:, 0] for dark in darks])
        bias = np.nanmedian(first_groups, axis=0) + params.offset
        model = datamodels.SuperBiasModel(
            data=bias.astype(np.float32),
            err=np.zeros_like(bias, np.float32),
            dq=np.zeros(bias.shape, np.uint32),
        )
        model.save(output_path)  # the framework adds metadata, HISTORY, validates, moves it

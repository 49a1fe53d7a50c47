"""``readnoise`` (DD): read noise from correlated double samples of a dark pair."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from refsmith.plugins.base import PluginParams, ReffilePlugin
from refsmith.plugins.builtin._common import fill_nonfinite, pairs
from refsmith.plugins.inputs import GroupInputs
from refsmith.plugins.stats import clipped_mean

__all__ = ["ReadnoiseParams", "ReadnoisePlugin"]


class ReadnoiseParams(PluginParams):
    """Parameters of :class:`ReadnoisePlugin`."""

    sigma_clip: float = Field(3.0, ge=0, description="clip the CDS samples of each pixel at "
                                                     "this many sigma (0: no clipping)")


class ReadnoisePlugin(ReffilePlugin):
    """Per-pixel read noise (DN) of one group, from pairs of dark ramps.

    For each dark pair the two ramps are subtracted (removing bias, fixed patterns and the
    mean dark signal); the correlated double samples (group ``g+1`` minus ``g``) of that
    difference have variance ``4 sigma**2``. The clipped (truncation-corrected) standard
    deviation over every integration and group step of every pair, divided by 2, is the
    read noise. Inputs: ``dq_init-`` ramps (no step that changes the noise).
    """

    name = "readnoise"
    reftype = "readnoise"
    imtypes = "DD"
    steps = ("dq_init-",)
    description = "Read noise from CDS of a dark pair difference"
    Params = ReadnoiseParams

    def make(self, group: GroupInputs, params: ReadnoiseParams, output_path: str) -> None:
        from stdatamodels.jwst import datamodels

        samples = []
        for first, second in pairs(group.require("D", 2)):
            a, b = first.read().masked(), second.read().masked()
            for member, data in ((first, a), (second, b)):
                if data.ndim != 4:
                    raise ValueError(
                        f"{member.role} is not a ramp (ints x groups x rows x columns) but "
                        f"{data.ndim}-D {data.shape}: read noise needs inputs calibrated "
                        "before ramp_fit (steps: dq_init-)")
            if a.shape[1:] != b.shape[1:]:
                raise ValueError(f"{first.role} and {second.role} are not ramps of one shape: "
                                 f"{a.shape}, {b.shape}")
            if a.shape[1] < 2:
                raise ValueError("read noise needs at least 2 groups per integration")
            nints = min(a.shape[0], b.shape[0])
            cds = np.diff(a[:nints] - b[:nints], axis=1)
            samples.append(cds.reshape(-1, *cds.shape[-2:]))
        stack = np.concatenate(samples, axis=0)
        _, std, _ = clipped_mean(stack, axis=0, sigma=params.sigma_clip)
        readnoise, _ = fill_nonfinite(std / 2.0)
        model = datamodels.ReadnoiseModel(data=readnoise.astype(np.float32))
        model.save(output_path)
        model.close()

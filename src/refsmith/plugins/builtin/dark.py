"""``dark`` (D+): clipped mean ramp, group by group, of superbias-corrected darks."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from refsmith.plugins.base import PluginParams, ReffilePlugin
from refsmith.plugins.builtin._common import dq_def, fill_nonfinite, flag_value, stack_integrations
from refsmith.plugins.inputs import GroupInputs
from refsmith.plugins.stats import clipped_mean

__all__ = ["DarkParams", "DarkPlugin"]


class DarkParams(PluginParams):
    """Parameters of :class:`DarkPlugin`."""

    sigma_clip: float = Field(3.0, ge=0, description="clip level over the integrations "
                                                     "(sigma; 0: plain mean)")


class DarkPlugin(ReffilePlugin):
    """Dark ramp (DN per group) with the exposures' readout pattern and NGROUPS.

    SCI ``(ngroups, ny, nx)``: sigma-clipped mean over every integration of every dark of
    each group; ERR: clipped standard deviation / sqrt(number kept); DQ ``(ny, nx)``:
    UNRELIABLE_DARK (+ DO_NOT_USE) where a group had fewer than two usable values. Inputs:
    ``linearity-`` ramps (superbias, reference-pixel and linearity corrected, as the
    dark_current step expects its science data).
    """

    name = "dark"
    reftype = "dark"
    imtypes = "D+"
    steps = ("linearity-",)
    description = "Dark: clipped mean ramp of superbias-corrected darks"
    Params = DarkParams

    def make(self, group: GroupInputs, params: DarkParams, output_path: str) -> None:
        from stdatamodels.jwst import datamodels

        darks = group.require("D", 1)
        for keyword in ("NGROUPS", "READPATT", "NFRAMES", "GROUPGAP"):
            group.common(keyword)
        stack, _ = stack_integrations(darks)
        mean, std, count = clipped_mean(stack, axis=0, sigma=params.sigma_clip)
        with np.errstate(invalid="ignore", divide="ignore"):
            err = std / np.sqrt(count)
        unreliable = ((count < 2) | ~np.isfinite(mean) | ~np.isfinite(err)).any(axis=0)
        data, _ = fill_nonfinite(mean)
        err, _ = fill_nonfinite(err, 0.0)
        flags = flag_value("UNRELIABLE_DARK") | flag_value("DO_NOT_USE")
        model = datamodels.DarkModel(
            data=data.astype(np.float32), err=err.astype(np.float32),
            dq=np.where(unreliable, flags, 0).astype(np.uint32),
            dq_def=dq_def(["DO_NOT_USE", "UNRELIABLE_DARK"]))
        first = darks[0]
        model.meta.exposure.readpatt = first.readpatt
        model.meta.exposure.ngroups = first.ngroups
        model.meta.exposure.nframes = first.nframes
        model.meta.exposure.groupgap = first.groupgap
        model.save(output_path)
        model.close()

"""``dark`` (D+): clipped mean ramp, group by group, of superbias-corrected darks."""

from __future__ import annotations

from typing import Any

import numpy as np

from refsmith.plugins.blocks import Block
from refsmith.plugins.builtin._common import (
    dq_def,
    fill_nonfinite,
    flag_value,
    pooled_floor,
    require_ramps,
    stack_copies,
)
from refsmith.plugins.builtin.declarations import Dark, DarkParams
from refsmith.plugins.inputs import GroupInputs
from refsmith.plugins.stats import clipped_stats

__all__ = ["DarkParams", "DarkPlugin", "integrations"]


def integrations(block: Block) -> np.ndarray:
    """``(n, ngroups, rows, nx)``: every integration of every input of a block."""
    return np.concatenate([ramp.data for ramp in block.ramps])


class DarkPlugin(Dark):
    """Dark ramp (DN per group) with the exposures' readout pattern and NGROUPS.

    SCI ``(ngroups, ny, nx)``: sigma-clipped mean over every integration of every dark of
    each group (dark_current subtracts it group by group from the science ramp); ERR:
    clipped standard deviation / sqrt(number kept); DQ ``(ny, nx)``: UNRELIABLE_DARK
    (+ DO_NOT_USE) where a group had fewer than two usable values. Inputs: ``linearity-``
    ramps (superbias, reference-pixel and linearity corrected, as the dark_current step
    expects its science data).
    """

    def make(self, group: GroupInputs, params: DarkParams, output_path: str) -> Any:
        from stdatamodels.jwst import datamodels

        darks = group.require("D", 1)
        for keyword in ("NGROUPS", "READPATT", "NFRAMES", "GROUPGAP"):
            group.common(keyword)
        require_ramps(darks, "a dark", self.steps[0])
        ngroups = darks[0].shape[1]
        ny, nx = group.frame(darks)
        work = stack_copies(sum(d.shape[0] for d in darks))
        floor = pooled_floor(group, darks, integrations, copies=work)
        # np.empty: not resident until written (the reserve counts them); every row is
        data = np.empty((ngroups, ny, nx), np.float32)
        err = np.empty((ngroups, ny, nx), np.float32)
        unreliable = np.zeros((ny, nx), bool)
        held = data.nbytes + err.nbytes + unreliable.nbytes
        for block in group.blocks(darks, copies=work, reserve=held):
            result = clipped_stats(integrations(block), floor, params.sigma_clip)
            with np.errstate(invalid="ignore", divide="ignore"):
                error = np.sqrt(result.variance / result.count)
            data[:, block.where] = result.mean
            err[:, block.where] = error
            unreliable[block.where] = ((result.count < 2) | ~np.isfinite(result.mean) |
                                       ~np.isfinite(error)).any(axis=0)
        fill_nonfinite(data, where=unreliable)  # a non-finite mean or error is unreliable
        fill_nonfinite(err, 0.0, where=unreliable)
        flags = flag_value("UNRELIABLE_DARK") | flag_value("DO_NOT_USE")
        model = datamodels.DarkModel(
            data=data, err=err, dq=np.where(unreliable, flags, 0).astype(np.uint32),
            dq_def=dq_def(["DO_NOT_USE", "UNRELIABLE_DARK"]))
        first = darks[0]
        model.meta.exposure.readpatt = first.readpatt
        model.meta.exposure.ngroups = first.ngroups
        model.meta.exposure.nframes = first.nframes
        model.meta.exposure.groupgap = first.groupgap
        return model  # the framework writes it once, with its metadata

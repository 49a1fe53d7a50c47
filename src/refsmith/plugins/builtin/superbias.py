"""``superbias`` (D+): clipped mean of the first group of every dark integration."""

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
from refsmith.plugins.builtin.declarations import Superbias, SuperbiasParams
from refsmith.plugins.inputs import GroupInputs
from refsmith.plugins.stats import clipped_stats, robust_zscore

__all__ = ["SuperbiasParams", "SuperbiasPlugin", "first_groups"]


def first_groups(block: Block) -> np.ndarray:
    """``(n, rows, nx)``: the first group of every integration of every input of a block."""
    return np.concatenate([ramp.data[:, 0] for ramp in block.ramps])


class SuperbiasPlugin(Superbias):
    """Bias level (DN) per pixel with its uncertainty.

    SCI: sigma-clipped mean over every integration of every dark of the first group (the
    superbias step subtracts it from every group); ERR: clipped standard deviation /
    sqrt(number kept); DQ: UNRELIABLE_BIAS (+ DO_NOT_USE) where fewer than two values were
    usable or the scatter is abnormal. Inputs: ``dq_init-`` ramps (before superbias, so the
    bias is still in the data).
    """

    def make(self, group: GroupInputs, params: SuperbiasParams, output_path: str) -> Any:
        from stdatamodels.jwst import datamodels

        darks = group.require("D", 1)
        require_ramps(darks, "a superbias", self.steps[0])
        ny, nx = group.frame(darks)
        first = slice(0, 1)
        work = stack_copies(sum(d.shape[0] for d in darks))
        floor = pooled_floor(group, darks, first_groups, groups=first, copies=work)
        mean = np.empty((ny, nx), np.float32)  # not resident until written; every row is
        std = np.empty((ny, nx), np.float32)
        count = np.zeros((ny, nx), np.int32)
        held = mean.nbytes + std.nbytes + count.nbytes
        for block in group.blocks(darks, groups=first, copies=work, reserve=held):
            result = clipped_stats(first_groups(block), floor, params.sigma_clip)
            mean[block.where] = result.mean
            std[block.where] = np.sqrt(result.variance)
            count[block.where] = result.count
        with np.errstate(invalid="ignore", divide="ignore"):
            err = std / np.sqrt(count)
        unreliable = (count < 2) | ~np.isfinite(mean) | ~np.isfinite(err)
        unreliable |= robust_zscore(std) > params.unreliable_sigma
        data = fill_nonfinite(mean)
        fill_nonfinite(err, 0.0)
        flags = flag_value("UNRELIABLE_BIAS") | flag_value("DO_NOT_USE")
        dq = np.where(unreliable, flags, 0).astype(np.uint32)
        model = datamodels.SuperBiasModel(
            data=data.astype(np.float32), err=err.astype(np.float32), dq=dq,
            dq_def=dq_def(["DO_NOT_USE", "UNRELIABLE_BIAS"]))
        return model  # the framework writes it once, with its metadata

"""``readnoise`` (DD): CDS read noise from correlated double samples of a dark pair."""

from __future__ import annotations

from typing import Any

import numpy as np

from refsmith.plugins.blocks import Block
from refsmith.plugins.builtin._common import (
    fill_nonfinite,
    group_steps,
    pairs,
    pooled_floor,
    require_ramps,
)
from refsmith.plugins.builtin.declarations import Readnoise, ReadnoiseParams
from refsmith.plugins.inputs import GroupInputs
from refsmith.plugins.stats import clipped_stats

__all__ = ["ReadnoiseParams", "ReadnoisePlugin", "pair_cds"]

COPIES = 2.0  # the blocks (10 bytes a sample of a pair; CDS made in them), results


def pair_cds(block: Block) -> np.ndarray:
    """``(n, rows, nx)`` CDS samples of the pair differences in a block of dark pairs.

    For each pair (ramps 0-1, 2-3 ...) the two ramps are subtracted (bias, fixed patterns
    and the mean dark signal cancel) and differenced group to group, in the first ramp's
    block (overwritten: no block-sized temporaries).
    """
    samples = []
    for first, second in pairs(block.ramps):
        nints = min(first.data.shape[0], second.data.shape[0])
        difference = np.subtract(first.data[:nints], second.data[:nints],
                                 out=first.data[:nints])
        cds = group_steps(difference)
        samples.append(cds.reshape(-1, *cds.shape[-2:]))
    return samples[0] if len(samples) == 1 else np.concatenate(samples)


class ReadnoisePlugin(Readnoise):
    """Per-pixel read noise (DN) as the pipeline reads it: the noise of a CDS of frames.

    For each dark pair the two ramps are subtracted and differenced group to group: these
    samples have mean 0 and variance ``4 s**2`` (``s``: the noise of one group, the mean
    of NFRAMES frames). Their clipped mean square gives ``s``; the file holds
    ``sqrt(2 NFRAMES) s``, the noise of the difference of two single frames, which is
    what stcal's ramp fitting divides by ``sqrt(2 NFRAMES)`` to get the noise of a group
    and what the jump step takes as CDS noise. Individual files combine as variances.
    Inputs: ``dq_init-`` ramps (no step that changes the noise).
    """

    def make(self, group: GroupInputs, params: ReadnoiseParams, output_path: str) -> Any:
        from stdatamodels.jwst import datamodels

        darks = [d for pair in pairs(group.require("D", 2)) for d in pair]
        require_ramps(darks, "read noise", self.steps[0], min_groups=2)
        for first, second in pairs(darks):
            if first.shape[1:] != second.shape[1:]:
                raise ValueError(f"{first.role} and {second.role} are not ramps of one "
                                 f"shape: {first.shape}, {second.shape}")
        nframes = int(group.common("NFRAMES") or 1)
        ny, nx = group.frame(darks)
        floor = pooled_floor(group, darks, pair_cds, center=0.0, copies=COPIES)[0]
        readnoise = np.empty((ny, nx), np.float32)  # not resident until written
        for block in group.blocks(darks, copies=COPIES, reserve=readnoise.nbytes):
            result = clipped_stats(pair_cds(block), floor, params.sigma_clip, center=0.0)
            readnoise[block.where] = np.sqrt(result.variance * nframes / 2.0)
        fill_nonfinite(readnoise)
        model = datamodels.ReadnoiseModel(data=readnoise.astype(np.float32))
        return model  # the framework writes it once, with its metadata

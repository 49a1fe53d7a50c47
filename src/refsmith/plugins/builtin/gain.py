"""``gain`` (DDFF): photon transfer from a flat pair and a dark pair, in boxes."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from refsmith.plugins.blocks import RampBlock
from refsmith.plugins.builtin._common import fill_nonfinite, group_steps, require_ramps
from refsmith.plugins.builtin.declarations import Gain, GainParams
from refsmith.plugins.inputs import GroupInputs
from refsmith.plugins.kernels import MAD_TO_SIGMA, median_columns
from refsmith.plugins.stats import clipped_stats

COPIES = 2.0  # the blocks (differences made in them), the sums of a pair

__all__ = ["GainParams", "GainPlugin", "box_gain", "box_median", "pair_statistics"]


def pair_statistics(first: RampBlock, second: RampBlock) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: mean signal per group step (DN) and the variance of the pair's CDS.

    The group-to-group differences of the two ramps (made in the blocks: they are
    overwritten) are averaged (signal) and subtracted (variance of the difference = 2 x the
    variance of one CDS, fixed patterns cancelled).
    """
    nints = min(first.data.shape[0], second.data.shape[0])
    da, db = group_steps(first.data[:nints]), group_steps(second.data[:nints])  # in place
    rows, nx = da.shape[-2:]
    total = da + db
    total *= 0.5
    signal = clipped_stats(total.reshape(-1, rows, nx), 0.0, sigma=0.0).mean
    da -= db
    variance = clipped_stats(da.reshape(-1, rows, nx), 0.0, sigma=0.0).variance
    return signal, variance


def box_gain(signal_f: np.ndarray, variance_f: np.ndarray, signal_d: np.ndarray,
             variance_d: np.ndarray, reference: np.ndarray, params: GainParams) -> np.ndarray:
    """``2 (S_F - S_D) / (V_F - V_D)`` per box of the maps, outlier pixels left out.

    All boxes at once: the maps are cut into ``(boxes, pixels of a box)``; in each box,
    pixels whose flat signal, flat variance or dark variance is more than ``reject_sigma``
    robust sigma (1.4826 MAD) from the box's median are left out, one map after the other.
    Boxes with fewer than ``min_pixels`` usable pixels, or no excess signal and variance,
    are NaN. Returns the ``(ny, nx)`` gain map.
    """
    ny, nx = signal_f.shape
    box = params.box
    rows, columns = -(-ny // box), -(-nx // box)

    def boxes(array: np.ndarray) -> np.ndarray:
        padded = np.full((rows * box, columns * box), np.nan)
        padded[:ny, :nx] = array
        return padded.reshape(rows, box, columns, box).swapaxes(1, 2).reshape(
            rows, columns, box * box)

    sf, vf, sd, vd = (boxes(a) for a in (signal_f, variance_f, signal_d, variance_d))
    usable = (boxes(reference.astype(float)) == 0) & np.isfinite(sf + vf + sd + vd)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # boxes with no usable pixel
        for values in (sf, vf, vd):
            chosen = np.where(usable, values, np.nan)
            center = box_median(chosen)
            scale = MAD_TO_SIGMA * box_median(np.abs(chosen - center))
            z = np.where(scale > 0, (values - center) / scale, 0.0)
            usable &= np.abs(z) <= params.reject_sigma
        count = usable.sum(axis=-1)

        def mean(values: np.ndarray) -> np.ndarray:
            return np.where(usable, values, 0.0).sum(axis=-1) / count

        excess_signal = mean(sf) - mean(sd)
        excess_variance = mean(vf) - mean(vd)
        good = (count >= params.min_pixels) & (excess_signal > 0) & (excess_variance > 0)
        gain = np.where(good, 2.0 * excess_signal / excess_variance, np.nan)
    full = np.repeat(np.repeat(gain, box, axis=0), box, axis=1)
    return full[:ny, :nx]


def box_median(values: np.ndarray) -> np.ndarray:
    """NaN-ignoring median over the last axis, keeping it (``(..., 1)``)."""
    flat = values.reshape(-1, values.shape[-1])
    return median_columns(flat.T).reshape(*values.shape[:-1], 1)


class GainPlugin(Gain):
    """Gain (e-/DN) by the photon transfer method, one value per box.

    For the flat pair F and the dark pair D: per pixel, the mean signal per group step
    ``S`` and the variance ``V`` of the difference of the pair's group-to-group
    differences (``V = 2 (S / g + 2 rn**2)``). In each box, pixels whose S or V is an
    outlier (hot, dead, noisy) are left out and ``g = 2 (S_F - S_D) / (V_F - V_D)``
    (read noise and dark shot noise cancel). Inputs: ``linearity-`` ramps.
    """

    def make(self, group: GroupInputs, params: GainParams, output_path: str) -> Any:
        from stdatamodels.jwst import datamodels

        inputs = [*group.require("D", 2)[:2], *group.require("F", 2)[:2]]
        require_ramps(inputs, "a gain", self.steps[0], min_groups=2)
        ny, nx = group.frame(inputs)
        signal_d, variance_d, signal_f, variance_f = (
            np.empty((ny, nx), np.float32) for _ in range(4))  # every row is written
        reference = np.zeros((ny, nx), bool)
        held = 5 * signal_d.nbytes
        for block in group.blocks(inputs, copies=COPIES, reserve=held):
            dark_pair, flat_pair = block.ramps[:2], block.ramps[2:]
            signal_d[block.where], variance_d[block.where] = pair_statistics(*dark_pair)
            signal_f[block.where], variance_f[block.where] = pair_statistics(*flat_pair)
            reference[block.where] = block.reference_pixels
        gain = box_gain(signal_f, variance_f, signal_d, variance_d, reference, params)
        if not np.isfinite(gain).any():
            raise ValueError("no box has enough usable pixels with signal above the dark; "
                             "are the flats illuminated?")
        fill_nonfinite(gain)
        model = datamodels.GainModel(data=gain.astype(np.float32))
        return model  # the framework writes it once, with its metadata

"""``gain`` (DDFF): photon transfer from a flat pair and a dark pair, in boxes."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from refsmith.plugins.base import PluginParams, ReffilePlugin
from refsmith.plugins.builtin._common import fill_nonfinite
from refsmith.plugins.inputs import GroupInputs, InputFile
from refsmith.plugins.stats import robust_zscore

__all__ = ["GainParams", "GainPlugin", "pair_statistics"]


class GainParams(PluginParams):
    """Parameters of :class:`GainPlugin`."""

    box: int = Field(32, ge=2, description="size (pixels) of the square boxes one gain "
                                           "value is measured in")
    reject_sigma: float = Field(5.0, gt=0, description="leave out pixels whose signal or "
                                "variance is this many robust sigma off in their box")
    min_pixels: int = Field(16, ge=2, description="boxes with fewer usable pixels get the "
                                                  "median gain of the other boxes")


def pair_statistics(first: InputFile, second: InputFile) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: mean signal per group step (DN) and the variance of the pair's CDS.

    The group-to-group differences of the two ramps are averaged (signal) and subtracted
    (variance of the difference = 2 x the variance of one CDS, fixed patterns cancelled).
    """
    a, b = first.read().masked(), second.read().masked()
    if a.shape[1:] != b.shape[1:] or a.ndim != 4 or a.shape[1] < 2:
        raise ValueError(f"{first.role}, {second.role}: need ramps of one shape with at "
                         f"least 2 groups, got {a.shape}, {b.shape}")
    nints = min(a.shape[0], b.shape[0])
    da, db = np.diff(a[:nints], axis=1), np.diff(b[:nints], axis=1)
    ny, nx = a.shape[-2:]
    signal = np.nanmean(((da + db) / 2.0).reshape(-1, ny, nx), axis=0)
    variance = np.nanvar((da - db).reshape(-1, ny, nx), axis=0, ddof=1)
    return signal, variance


class GainPlugin(ReffilePlugin):
    """Gain (e-/DN) by the photon transfer method, one value per box.

    For the flat pair F and the dark pair D: per pixel, the mean signal per group step
    ``S`` and the variance ``V`` of the difference of the pair's group-to-group
    differences (``V = 2 (S / g + 2 rn**2)``). In each box, pixels whose S or V is an
    outlier (hot, dead, noisy) are left out and ``g = 2 (S_F - S_D) / (V_F - V_D)``
    (read noise and dark shot noise cancel). Inputs: ``linearity-`` ramps.
    """

    name = "gain"
    reftype = "gain"
    imtypes = "DDFF"
    steps = ("linearity-",)
    description = "Gain from the photon transfer of a flat pair and a dark pair"
    Params = GainParams

    def make(self, group: GroupInputs, params: GainParams, output_path: str) -> None:
        from stdatamodels.jwst import datamodels

        dark_pair = group.require("D", 2)[:2]
        flat_pair = group.require("F", 2)[:2]
        signal_d, variance_d = pair_statistics(*dark_pair)
        signal_f, variance_f = pair_statistics(*flat_pair)
        reference = dark_pair[0].read().reference_pixels
        gain = np.full(signal_f.shape, np.nan)
        ny, nx = gain.shape
        for y in range(0, ny, params.box):
            for x in range(0, nx, params.box):
                box = (slice(y, y + params.box), slice(x, x + params.box))
                usable = ~reference[box] & np.isfinite(signal_f[box] + variance_f[box] +
                                                       signal_d[box] + variance_d[box])
                for values in (signal_f[box], variance_f[box], variance_d[box]):
                    usable &= np.abs(robust_zscore(values, usable)) <= params.reject_sigma
                if usable.sum() < params.min_pixels:
                    continue
                excess_signal = signal_f[box][usable].mean() - signal_d[box][usable].mean()
                excess_variance = (variance_f[box][usable].mean() -
                                   variance_d[box][usable].mean())
                if excess_variance > 0 and excess_signal > 0:
                    gain[box] = 2.0 * excess_signal / excess_variance
        if not np.isfinite(gain).any():
            raise ValueError("no box has enough usable pixels with signal above the dark; "
                             "are the flats illuminated?")
        gain, _ = fill_nonfinite(gain)
        model = datamodels.GainModel(data=gain.astype(np.float32))
        model.save(output_path)
        model.close()

"""Calibrated-looking ramps of known truth, written without the pipeline (fast tests).

A ``RampModel`` file as calwebb_detector1 writes it before ramp_fit (SCI float32, PIXELDQ,
GROUPDQ, the exposure keywords the plug-ins read), with per-pixel read noise, dark rate,
flux and gain injected: Poisson electrons through ``gain`` plus Gaussian read noise of
``read_noise`` DN per frame, averaged over NFRAMES frames per group.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from refsmith.synthetic.ramps import group_times


def write_ramp(path: Path, *, shape: tuple[int, int, int, int], read_noise: float | np.ndarray,
               dark_rate: float | np.ndarray = 0.0, flux: float | np.ndarray = 0.0,
               gain: float | np.ndarray = 2.0, bias: float | np.ndarray = 1000.0,
               nframes: int = 1, tframe: float = 10.0, seed: int = 0,
               exp_type: str = "NRC_DARK", reference: int = 4, noutputs: int = 1,
               pixeldq: np.ndarray | None = None, groupdq: np.ndarray | None = None) -> Path:
    """Write a ``(nints, ngroups, ny, nx)`` ramp at the ``dq_init-``/``linearity-`` state."""
    from stdatamodels.jwst import datamodels

    nints, ngroups, ny, nx = shape
    rng = np.random.default_rng(seed)
    times = group_times(ngroups, nframes, 0, tframe)
    rate = np.broadcast_to(np.asarray(dark_rate, float) + np.asarray(flux, float),
                           (ny, nx)).copy()
    if reference:
        rate[:reference] = rate[-reference:] = 0.0
        rate[:, :reference] = rate[:, -reference:] = 0.0
    gain = np.broadcast_to(np.asarray(gain, float), (ny, nx))
    noise = np.broadcast_to(np.asarray(read_noise, float), (ny, nx))
    steps = np.diff(np.concatenate([[0.0], times]))
    data = np.empty(shape, np.float32)
    for i in range(nints):
        electrons = rng.poisson(steps[:, None, None] * rate * gain).cumsum(axis=0)
        frames = noise * rng.standard_normal((ngroups, nframes, ny, nx))
        data[i] = bias + electrons / gain + frames.mean(axis=1)
    dq = np.zeros((ny, nx), np.uint32)
    if reference:
        dq[:reference] = dq[-reference:] = 2**31
        dq[:, :reference] = dq[:, -reference:] = 2**31
    if pixeldq is not None:
        dq |= pixeldq.astype(np.uint32)
    model = datamodels.RampModel(
        data=data, pixeldq=dq,
        groupdq=groupdq if groupdq is not None else np.zeros(shape, np.uint8))
    meta = model.meta
    meta.instrument.name, meta.instrument.detector = "NIRCAM", "NRCA1"
    meta.exposure.type, meta.exposure.readpatt = exp_type, "RAPID" if nframes == 1 else "BRIGHT2"
    meta.exposure.nints, meta.exposure.ngroups = nints, ngroups
    meta.exposure.nframes, meta.exposure.groupgap = nframes, 0
    meta.exposure.frame_time, meta.exposure.group_time = tframe, tframe * nframes
    meta.exposure.start_time = 60000.0 + seed / 1000
    meta.subarray.name = "FULL"
    meta.subarray.xstart = meta.subarray.ystart = 1
    meta.subarray.xsize, meta.subarray.ysize = nx, ny
    meta.exposure.noutputs = noutputs
    meta.cal_step.dq_init = "COMPLETE"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    model.close()
    return path

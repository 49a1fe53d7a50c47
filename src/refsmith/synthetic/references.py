"""Synthetic reference files that the real calwebb_detector1 accepts.

For tests, the demo and benchmarks: :func:`write_reference_files` writes the reference files
that let the pipeline run end to end on the exposures of :mod:`refsmith.synthetic.ramps`
with every reference type overridden (no CRDS), and :func:`reference_overrides` turns them
into per-step overrides. The superbias draws the detector's fixed bias pattern from
``detector_seed``, so it matches the exposures made with the same seed, and a dark's slope
after the whole pipeline is close to ``flux``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from refsmith.detector1.reftypes import STEP_REFTYPES
from refsmith.synthetic.ramps import (
    bias_map,
    detector_axes,
    frame_time,
    group_times,
    readout_frames,
    reference_pixels,
)

__all__ = [
    "REFERENCE_TYPES",
    "reference_overrides",
    "write_reference_files",
]

# reftype -> what write_reference_files writes
REFERENCE_TYPES: dict[str, str] = {
    "mask": "bad pixel mask (reference pixels flagged REFERENCE_PIXEL)",
    "saturation": "saturation threshold",
    "superbias": "bias level (the fixed pattern of detector_seed)",
    "ipc": "3x3 IPC kernel",
    "linearity": "identity polynomial (plus an optional quadratic term)",
    "dark": "dark ramp with the science readout pattern",
    "gain": "gain (e-/DN)",
    "readnoise": "read noise (DN)",
}

_DQ_DEF = [
    (0, 1, "DO_NOT_USE", "Bad pixel not to be used for science or calibration"),
    (31, 2**31, "REFERENCE_PIXEL", "Pixel is a reference pixel"),
]
_REFERENCE_PIXEL = 2**31


def write_reference_files(
    directory: str | Path,
    *,
    instrument: str = "NIRCAM",
    detector: str = "NRCA1",
    subarray: str = "SUB64P",
    substrt: tuple[int, int] = (1, 1),
    shape: tuple[int, int, int, int] = (1, 6, 64, 64),
    readpatt: str = "RAPID",
    nframes: int | None = None,
    groupgap: int | None = None,
    bias: float = 12000.0,
    dark_rate: float = 0.05,
    read_noise: float = 10.0,
    gain: float = 2.0,
    saturation: float = 60000.0,
    nonlinearity: float = 0.0,
    ipc_alpha: float = 0.005,
    detector_seed: int = 0,
    useafter: str = "2022-01-01T00:00:00",
    reftypes: tuple[str, ...] = tuple(REFERENCE_TYPES),
) -> dict[str, Path]:
    """Write minimal valid synthetic reference files matching an exposure's setup.

    Every file is at the subarray's size and position (so no cut-out from full frame is
    needed), carries REFTYPE, AUTHOR, PEDIGREE, DESCRIP, USEAFTER, INSTRUME, DETECTOR and
    the subarray keywords. The dark has the exposure's readout pattern and NGROUPS.

    Parameters
    ----------
    directory : str or Path
        Where to write ``synth_<detector>_<subarray>_<reftype>.fits`` (created if needed).
    instrument, detector, subarray, substrt, shape, readpatt, nframes, groupgap
        As for :func:`refsmith.synthetic.ramps.write_raw_exposure` (only ``ngroups``, ``ny``,
        ``nx`` of ``shape`` are used).
    bias, dark_rate, read_noise, gain : float
        As for :func:`refsmith.synthetic.ramps.write_raw_exposure`.
    saturation : float
        Saturation threshold (DN).
    nonlinearity : float
        Quadratic coefficient of the linearity correction (0: identity).
    ipc_alpha : float
        Coupling to each of the 4 nearest neighbours in the IPC kernel.
    detector_seed : int
        Seed of the fixed bias pattern (the superbias).
    useafter : str
        USEAFTER of every file.
    reftypes : tuple of str
        Which of :data:`REFERENCE_TYPES` to write.

    Returns
    -------
    dict of str to Path
        reftype -> file written.
    """
    from stdatamodels.jwst import datamodels

    unknown = set(reftypes) - set(REFERENCE_TYPES)
    if unknown:
        raise ValueError(
            f"cannot synthesise reference types {sorted(unknown)}; "
            f"known: {', '.join(REFERENCE_TYPES)}"
        )
    _, ngroups, ny, nx = (int(n) for n in shape)
    nf, gap = readout_frames(readpatt, nframes, groupgap)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    zeros_dq = np.zeros((ny, nx), dtype=np.uint32)
    dq_def = np.array(_DQ_DEF, dtype=[("BIT", "<i4"), ("VALUE", "<u4"), ("NAME", "S40"),
                                       ("DESCRIPTION", "S80")])

    def build(reftype: str) -> object:
        if reftype == "mask":
            dq = zeros_dq.copy()
            dq[reference_pixels(instrument, substrt, ny, nx)] = _REFERENCE_PIXEL
            return datamodels.MaskModel(dq=dq, dq_def=dq_def)
        if reftype == "saturation":
            return datamodels.SaturationModel(
                data=np.full((ny, nx), saturation, np.float32), dq=zeros_dq, dq_def=dq_def
            )
        if reftype == "superbias":
            return datamodels.SuperBiasModel(
                data=bias_map((ny, nx), bias, detector_seed),
                err=np.ones((ny, nx), np.float32), dq=zeros_dq, dq_def=dq_def,
            )
        if reftype == "ipc":
            kernel = np.zeros((3, 3), np.float32)
            kernel[1, 1] = 1.0 - 4 * ipc_alpha
            kernel[0, 1] = kernel[2, 1] = kernel[1, 0] = kernel[1, 2] = ipc_alpha
            return datamodels.IPCModel(data=kernel)
        if reftype == "linearity":
            coeffs = np.zeros((3, ny, nx), np.float32)
            coeffs[1] = 1.0
            coeffs[2] = nonlinearity
            return datamodels.LinearityModel(coeffs=coeffs, dq=zeros_dq, dq_def=dq_def)
        if reftype == "dark":
            tframe = frame_time(instrument, ny, nx)
            times = group_times(ngroups, nf, gap, tframe).astype(np.float32)
            data = np.broadcast_to(times[:, None, None] * dark_rate, (ngroups, ny, nx))
            dark = datamodels.DarkModel(
                data=np.ascontiguousarray(data, dtype=np.float32),
                err=np.full((ngroups, ny, nx), 0.01, np.float32), dq=zeros_dq, dq_def=dq_def,
            )
            dark.meta.exposure.readpatt = readpatt.upper()
            dark.meta.exposure.nframes = nf
            dark.meta.exposure.groupgap = gap
            dark.meta.exposure.ngroups = ngroups
            return dark
        if reftype == "gain":
            return datamodels.GainModel(data=np.full((ny, nx), gain, np.float32))
        return datamodels.ReadnoiseModel(data=np.full((ny, nx), read_noise, np.float32))

    written: dict[str, Path] = {}
    for reftype in reftypes:
        model = build(reftype)
        meta = model.meta
        meta.reftype = reftype.upper()
        meta.author = "refsmith.synthetic.references"
        meta.pedigree = "DUMMY"
        meta.description = f"Synthetic {REFERENCE_TYPES[reftype]} for tests"
        meta.useafter = useafter
        meta.telescope = "JWST"
        meta.instrument.name = instrument.upper()
        meta.instrument.detector = detector.upper()
        if reftype != "ipc":  # a kernel has no subarray
            meta.subarray.name = subarray.upper()
            meta.subarray.xstart, meta.subarray.ystart = int(substrt[0]), int(substrt[1])
            meta.subarray.xsize, meta.subarray.ysize = nx, ny
            meta.subarray.fastaxis, meta.subarray.slowaxis = detector_axes(instrument, detector)
        target = directory / f"synth_{detector.lower()}_{subarray.lower()}_{reftype}.fits"
        model.save(str(target))
        model.close()
        written[reftype] = target
    return written


def reference_overrides(
    reference_files: Mapping[str, str | Path], steps: tuple[str, ...] | None = None
) -> dict[str, dict[str, str]]:
    """Per-step overrides (``step -> {reftype: path or 'N/A'}``) for a set of files.

    Every reference type a step uses gets the file of that type, or ``'N/A'`` when there is
    none (fine for refpix/sirskernel outside NIRSpec IRS2, rscd/reset outside MIRI; a
    required type left N/A makes the step fail or skip).

    Parameters
    ----------
    reference_files : mapping
        reftype -> path, e.g. the result of :func:`write_reference_files`.
    steps : tuple of str, optional
        Restrict to these steps (default: all calwebb_detector1 steps).

    Returns
    -------
    dict
        step -> reftype -> path string or ``'N/A'``.
    """
    chosen = STEP_REFTYPES if steps is None else {s: STEP_REFTYPES[s] for s in steps}
    return {
        step: {rt: str(reference_files[rt]) if rt in reference_files else "N/A" for rt in types}
        for step, types in chosen.items()
        if types
    }

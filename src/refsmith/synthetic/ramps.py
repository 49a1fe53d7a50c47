"""Synthetic raw ramps that the real calwebb_detector1 accepts.

For tests, the demo and benchmarks: :func:`write_raw_exposure` writes a small
``_uncal.fits`` (stdatamodels ``Level1bModel``, with the ASDF extension real files carry),
optionally with known bad pixels from :func:`inject_defects`. The fixed bias pattern is drawn
from ``detector_seed``, so the superbias of
:func:`refsmith.synthetic.references.write_reference_files` matches the exposures made with
the same seed and a dark's slope after the whole pipeline is close to ``flux``. The helpers
shared with :mod:`refsmith.synthetic.references` live here.

Only near-infrared detectors (2048 x 2048, 4 reference rows/columns on each edge) and the
MIRI imager layout (1032 x 1024, 4 reference columns on each side) are modelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.time import Time

__all__ = [
    "READOUT_PATTERNS",
    "DetectorGeometry",
    "InjectedDefects",
    "bias_map",
    "detector_axes",
    "frame_time",
    "group_times",
    "inject_defects",
    "readout_frames",
    "reference_pixels",
    "write_raw_exposure",
]

# readout pattern -> (NFRAMES, GROUPGAP)
READOUT_PATTERNS: dict[str, tuple[int, int]] = {
    # NIRCam
    "RAPID": (1, 0), "BRIGHT1": (1, 1), "BRIGHT2": (2, 0), "SHALLOW2": (2, 3),
    "SHALLOW4": (4, 1), "MEDIUM2": (2, 8), "MEDIUM8": (8, 2), "DEEP2": (2, 18),
    "DEEP8": (8, 12),
    # NIRISS, NIRSpec, FGS, MIRI
    "NISRAPID": (1, 0), "NIS": (4, 0), "NRSRAPID": (1, 0), "NRS": (4, 0),
    "FGSRAPID": (1, 0), "FGS": (4, 0), "FAST": (1, 0), "SLOW": (1, 0),
}

_FIXED_PATTERN_SIGMA = 30.0  # DN, pixel-to-pixel spread of the bias level


@dataclass(frozen=True)
class DetectorGeometry:
    """Full-frame size and reference-pixel border of a detector (science frame)."""

    nx: int
    ny: int
    reference_columns: int  # on the left and right edges
    reference_rows: int  # on the bottom and top edges


def _geometry(instrument: str) -> DetectorGeometry:
    if instrument.upper() == "MIRI":
        return DetectorGeometry(nx=1032, ny=1024, reference_columns=4, reference_rows=0)
    return DetectorGeometry(nx=2048, ny=2048, reference_columns=4, reference_rows=4)


def reference_pixels(
    instrument: str, substrt: tuple[int, int], ny: int, nx: int
) -> np.ndarray:
    """Boolean (ny, nx) map of the reference pixels inside the subarray."""
    geometry = _geometry(instrument)
    x = np.arange(nx) + substrt[0] - 1  # full-frame, 0-based
    y = np.arange(ny) + substrt[1] - 1
    rc, rr = geometry.reference_columns, geometry.reference_rows
    ref_x = (x < rc) | (x >= geometry.nx - rc)
    ref_y = (y < rr) | (y >= geometry.ny - rr) if rr else np.zeros(ny, bool)
    return ref_y[:, None] | ref_x[None, :]


def frame_time(instrument: str, ny: int, nx: int) -> float:
    """Frame time in seconds of a one-output readout of ``ny`` x ``nx`` pixels.

    Uses the near-infrared SIDECAR timing ``(nx + 12) * (ny + 1) * 10 us`` (full frame with
    4 outputs: 10.74 s); MIRI: ``(nx / 4 + 2) * (ny + 3) * 10 us`` is close enough for
    synthetic data.
    """
    if ny == 2048 and nx == 2048:
        return (2048 / 4 + 12) * (2048 + 1) * 10e-6
    if instrument.upper() == "MIRI":
        return (nx / 4 + 2) * (ny + 3) * 10e-6
    return (nx + 12) * (ny + 1) * 10e-6


def group_times(ngroups: int, nframes: int, groupgap: int, tframe: float) -> np.ndarray:
    """Mean time (s) since the reset of the frames averaged in each group."""
    g = np.arange(ngroups)
    return tframe * (g * (nframes + groupgap) + (nframes + 1) / 2.0)


@dataclass(frozen=True)
class InjectedDefects:
    """Known bad pixels of a synthetic detector (boolean ``(ny, nx)`` maps, disjoint).

    ``hot`` pixels add ``hot_rate`` DN/s of dark current, ``dead`` ones collect no charge
    (neither dark current nor light), ``low_qe`` ones see ``low_qe_factor`` of the light,
    ``noisy`` ones have ``noisy_factor`` times the read noise. Pass the same object to
    every exposure of one detector.
    """

    hot: np.ndarray
    dead: np.ndarray
    low_qe: np.ndarray
    noisy: np.ndarray
    hot_rate: float = 100.0
    low_qe_factor: float = 0.3
    noisy_factor: float = 5.0

    @property
    def any(self) -> np.ndarray:
        """Pixels with any defect."""
        return self.hot | self.dead | self.low_qe | self.noisy


def inject_defects(
    shape: tuple[int, int],
    *,
    instrument: str = "NIRCAM",
    substrt: tuple[int, int] = (1, 1),
    hot: int = 8,
    dead: int = 8,
    low_qe: int = 8,
    noisy: int = 8,
    seed: int = 0,
    **factors: float,
) -> InjectedDefects:
    """Draw disjoint hot, dead, low-QE and noisy pixels among the science pixels.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the subarray.
    instrument, substrt
        As for :func:`write_raw_exposure` (reference pixels are never chosen).
    hot, dead, low_qe, noisy : int
        How many pixels of each kind.
    seed : int
        Seed of the draw.
    **factors : float
        ``hot_rate``, ``low_qe_factor``, ``noisy_factor`` of :class:`InjectedDefects`.

    Returns
    -------
    InjectedDefects
    """
    ny, nx = shape
    science = np.flatnonzero(~reference_pixels(instrument, substrt, ny, nx).ravel())
    counts = (hot, dead, low_qe, noisy)
    chosen = np.random.default_rng([seed, 3]).choice(science, sum(counts), replace=False)
    maps, start = [], 0
    for count in counts:
        flat = np.zeros(ny * nx, bool)
        flat[chosen[start:start + count]] = True
        maps.append(flat.reshape(ny, nx))
        start += count
    return InjectedDefects(*maps, **factors)


def bias_map(shape: tuple[int, int], bias: float, detector_seed: int) -> np.ndarray:
    rng = np.random.default_rng([detector_seed, 1])
    return (bias + _FIXED_PATTERN_SIGMA * rng.standard_normal(shape)).astype(np.float32)


def readout_frames(readpatt: str, nframes: int | None, groupgap: int | None) -> tuple[int, int]:
    if nframes is not None and groupgap is not None:
        return nframes, groupgap
    try:
        default = READOUT_PATTERNS[readpatt.upper()]
    except KeyError:
        raise ValueError(
            f"unknown readout pattern {readpatt!r}: pass nframes= and groupgap=, or use one "
            f"of {', '.join(READOUT_PATTERNS)}"
        ) from None
    return (default[0] if nframes is None else nframes,
            default[1] if groupgap is None else groupgap)


def _iso(mjd: float) -> str:
    return Time(mjd, format="mjd", scale="utc").isot


def write_raw_exposure(
    path: str | Path,
    *,
    instrument: str = "NIRCAM",
    detector: str = "NRCA1",
    exp_type: str = "NRC_DARK",
    readpatt: str = "RAPID",
    subarray: str = "SUB64P",
    substrt: tuple[int, int] = (1, 1),
    shape: tuple[int, int, int, int] = (1, 6, 64, 64),
    mjd: float = 60000.0,
    bias: float = 12000.0,
    dark_rate: float = 0.05,
    read_noise: float = 10.0,
    gain: float = 2.0,
    flux: float = 0.0,
    nframes: int | None = None,
    groupgap: int | None = None,
    detector_seed: int = 0,
    seed: int = 1,
    extra_keywords: Mapping[str, object] | None = None,
    defects: InjectedDefects | None = None,
) -> Path:
    """Write a synthetic raw exposure (``_uncal``-like FITS file) the pipeline accepts.

    Each pixel integrates ``dark_rate + flux`` DN/s (none in reference pixels) with Poisson
    noise (through ``gain``) on top of the fixed bias pattern of ``detector_seed``, plus
    Gaussian read noise of ``read_noise`` DN per group.

    Parameters
    ----------
    path : str or Path
        Output file (overwritten).
    instrument, detector, exp_type, readpatt, subarray : str
        INSTRUME, DETECTOR, EXP_TYPE, READPATT and SUBARRAY (values of the core schema).
    substrt : tuple of int
        SUBSTRT1, SUBSTRT2 (1-based, science frame). ``(1, 1)`` puts the subarray in the
        corner with 4 reference columns and rows.
    shape : tuple of int
        ``(nints, ngroups, ny, nx)``; SUBSIZE1 = nx, SUBSIZE2 = ny.
    mjd : float
        EXPSTART (UTC MJD); DATE-OBS, TIME-OBS, DATE-BEG, DATE-END, EXPMID, EXPEND follow.
    bias, dark_rate, read_noise, gain, flux : float
        Mean bias (DN), dark current (DN/s), read noise (DN), gain (e-/DN), and extra
        illumination (DN/s). ``dark_rate``, ``read_noise``, ``gain`` and ``flux`` may also
        be ``(ny, nx)`` arrays (a per-pixel truth).
    nframes, groupgap : int, optional
        Override the readout pattern's NFRAMES / GROUPGAP.
    detector_seed : int
        Seed of the fixed bias pattern (use the same for the reference files).
    seed : int
        Seed of the noise of this exposure.
    extra_keywords : mapping, optional
        Datamodel attributes to set as well, e.g. ``{"meta.instrument.filter": "F150W"}``.
    defects : InjectedDefects, optional
        Hot, dead, low-QE and noisy pixels (see :func:`inject_defects`).

    Returns
    -------
    Path
        ``path``.
    """
    from stdatamodels.jwst import datamodels

    nints, ngroups, ny, nx = (int(n) for n in shape)
    nf, gap = readout_frames(readpatt, nframes, groupgap)
    tframe = frame_time(instrument, ny, nx)
    tgroup = tframe * (nf + gap)
    times = group_times(ngroups, nf, gap, tframe)

    rng = np.random.default_rng([detector_seed, seed, 2])
    dark = np.broadcast_to(np.asarray(dark_rate, np.float64), (ny, nx)).copy()
    light = np.broadcast_to(np.asarray(flux, np.float64), (ny, nx)).copy()
    noise = np.broadcast_to(np.asarray(read_noise, np.float64), (ny, nx)).copy()
    if defects is not None:
        dark[defects.hot] += defects.hot_rate
        light[defects.low_qe] *= defects.low_qe_factor
        dark[defects.dead] = light[defects.dead] = 0.0
        noise[defects.noisy] *= defects.noisy_factor
    rate = dark + light
    rate[reference_pixels(instrument, substrt, ny, nx)] = 0.0
    electrons_per_step = np.diff(np.concatenate([[0.0], times]))[:, None, None] * rate * gain
    ramps = np.empty((nints, ngroups, ny, nx), dtype=np.float64)
    for i in range(nints):
        accumulated = np.cumsum(rng.poisson(electrons_per_step), axis=0) / gain
        ramps[i] = accumulated + noise * rng.standard_normal((ngroups, ny, nx))
    ramps += bias_map((ny, nx), bias, detector_seed)
    data = np.clip(np.rint(ramps), 0, 65535).astype(np.uint16)

    integration_time = tgroup * (ngroups - 1) + tframe * nf  # approximate
    duration = nints * (ngroups * (nf + gap) + 1) * tframe  # + one reset frame
    model = datamodels.Level1bModel(data=data)
    meta = model.meta
    meta.telescope = "JWST"
    meta.instrument.name = instrument.upper()
    meta.instrument.detector = detector.upper()
    meta.exposure.type = exp_type.upper()
    meta.exposure.readpatt = readpatt.upper()
    meta.exposure.nints = nints
    meta.exposure.ngroups = ngroups
    meta.exposure.nframes = nf
    meta.exposure.groupgap = gap
    meta.exposure.frame_divisor = nf
    meta.exposure.nresets_at_start = 1
    meta.exposure.frame_time = tframe
    meta.exposure.group_time = tgroup
    meta.exposure.integration_time = integration_time
    meta.exposure.exposure_time = integration_time * nints
    meta.exposure.duration = duration
    meta.exposure.start_time = mjd
    meta.exposure.mid_time = mjd + duration / 2 / 86400.0
    meta.exposure.end_time = mjd + duration / 86400.0
    begin, end = _iso(mjd), _iso(mjd + duration / 86400.0)
    meta.observation.date, meta.observation.time = begin.split("T")
    meta.observation.date_beg = begin
    meta.observation.date_end = end
    meta.subarray.name = subarray.upper()
    meta.subarray.xstart, meta.subarray.ystart = int(substrt[0]), int(substrt[1])
    meta.subarray.xsize, meta.subarray.ysize = nx, ny
    meta.subarray.fastaxis, meta.subarray.slowaxis = detector_axes(instrument, detector)
    for dotted, value in (extra_keywords or {}).items():
        _set_dotted(model, dotted, value)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    model.close()
    return path


def detector_axes(instrument: str, detector: str) -> tuple[int, int]:
    """FASTAXIS, SLOWAXIS (only used by refpix; any consistent pair works on synthetic data)."""
    if instrument.upper() == "MIRI":
        return 1, 2
    # NRCA1 reads along -x; the exact per-detector table is not needed here
    return (-1, 2) if detector.upper() in {"NRCA1", "NRCA3", "NRCB2", "NRCB4"} else (1, -2)


def _set_dotted(model: object, dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    node = model
    for name in parents:
        node = getattr(node, name)
    setattr(node, last, value)

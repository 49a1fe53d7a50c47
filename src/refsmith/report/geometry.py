"""Where a reference file's pixels sit on the detector: reference pixels and amplifiers.

The near-infrared detectors (NIRCam, NIRISS, NIRSpec, FGS) are 2048 x 2048 with a border
of 4 reference pixels and, read through 4 outputs, 4 amplifiers of 512 columns each. MIRI
(1032 x 1024) has 4 reference columns on each side and 4 outputs interleaved column by
column. A subarray is placed by SUBSTRT1/2 (1-based); without them a 2048-wide file is
taken as full frame and a smaller one as a subarray without known position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Amplifier", "amplifiers", "reference_pixels"]

NIR_SIZE = 2048
NIR_BORDER = 4
NIR_AMP_COLUMNS = 512
MIRI_REF_COLUMNS = ((0, 4), (1028, 1032))


@dataclass(frozen=True)
class Amplifier:
    """One output: its name and the columns of the file it reads (a boolean mask)."""

    name: str
    columns: np.ndarray


def _is_miri(header: Mapping[str, Any]) -> bool:
    return str(header.get("INSTRUME", "")).strip().upper() == "MIRI"


def _origin(header: Mapping[str, Any], shape: tuple[int, int]) -> tuple[int, int] | None:
    """0-based detector (x, y) of the file's first pixel; None when unknown."""
    if "SUBSTRT1" in header and "SUBSTRT2" in header:
        return int(header["SUBSTRT1"]) - 1, int(header["SUBSTRT2"]) - 1
    if (_is_miri(header) and shape == (1024, 1032)) or shape == (NIR_SIZE, NIR_SIZE):
        return 0, 0
    return None


def reference_pixels(header: Mapping[str, Any], shape: tuple[int, int]) -> np.ndarray | None:
    """True on the reference pixels of a 2-D array of ``shape``; None when the file's
    place on the detector is unknown."""
    origin = _origin(header, shape)
    if origin is None:
        return None
    ny, nx = shape
    x = np.arange(nx) + origin[0]
    y = np.arange(ny) + origin[1]
    if _is_miri(header):
        cols = np.zeros(nx, bool)
        for low, high in MIRI_REF_COLUMNS:
            cols |= (x >= low) & (x < high)
        return np.broadcast_to(cols[None, :], shape).copy()
    cols = (x < NIR_BORDER) | (x >= NIR_SIZE - NIR_BORDER)
    rows = (y < NIR_BORDER) | (y >= NIR_SIZE - NIR_BORDER)
    return rows[:, None] | cols[None, :]


def amplifiers(header: Mapping[str, Any], shape: tuple[int, int]) -> list[Amplifier]:
    """The outputs that read the file's columns: NOUTPUTS from the header, else 4 for a
    full-frame file and 1 for a subarray."""
    nx = shape[1]
    origin = _origin(header, shape)
    full = origin == (0, 0) and (nx == NIR_SIZE or (_is_miri(header) and nx == 1032))
    outputs = int(header.get("NOUTPUTS") or (4 if full else 1))
    if outputs <= 1 or origin is None:
        return [Amplifier("all", np.ones(nx, bool))]
    x = np.arange(nx) + origin[0]
    if _is_miri(header):
        return [Amplifier(f"{k + 1}", x % 4 == k) for k in range(4)]
    amps = [Amplifier(f"{k + 1}", (x >= k * NIR_AMP_COLUMNS) & (x < (k + 1) * NIR_AMP_COLUMNS))
            for k in range(outputs)]
    return [a for a in amps if a.columns.any()]

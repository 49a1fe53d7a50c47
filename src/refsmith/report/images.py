"""Reading a reference file for the report: one 2-D image, its DQ, flags and header.

A cube (a dark: groups x rows x columns) is read one plane at a time (astropy's
``section``, no memory map) and reduced to its mean rate map (the least-squares slope of
every pixel over the groups) and the mean signal of every group, so a full-frame dark of
100 groups costs two 2-D arrays, not the cube.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Image", "plane", "read_image", "robust_std"]

META_KEYS = ("INSTRUME", "REFTYPE", "DETECTOR", "SUBARRAY", "READPATT", "USEAFTER",
             "PEDIGREE", "DESCRIP")
GEOMETRY_KEYS = ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2", "NOUTPUTS", "TGROUP",
                 "NFRAMES", "GROUPGAP")


@dataclass
class Image:
    """The 2-D view of one reference file.

    Attributes
    ----------
    kind : str
        ``mask`` (a DQ array), ``image`` (a 2-D SCI) or ``cube`` (a 3-D SCI).
    label : str
        What ``data`` is (``SCI``, ``DQ``, ``mean rate (DN/group)``).
    data : ndarray
        2-D: the DQ of a mask (integers), else float64 values (the rate map of a cube).
    dq : ndarray or None
        The DQ array beside SCI, if any.
    flags : dict
        DQ_DEF: flag value -> name.
    header : dict
        Primary-header values of :data:`META_KEYS` and :data:`GEOMETRY_KEYS` present.
    shape : tuple
        Shape of the array on disk.
    group_means : list of float
        Mean of every group of a cube (finite pixels).
    history : str
        The primary header's HISTORY.
    """

    kind: str
    label: str
    data: np.ndarray
    dq: np.ndarray | None = None
    flags: dict[int, str] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    shape: tuple[int, ...] = ()
    group_means: list[float] = field(default_factory=list)
    history: str = ""


def robust_std(values: np.ndarray) -> float:
    """1.4826 x the median absolute deviation of the finite values (NaN when none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan
    return float(1.4826 * np.median(np.abs(finite - np.median(finite))))


@contextmanager
def _open(path: Path) -> Iterator[Any]:
    """The HDU list, not memory-mapped: an extension's data is read when asked for, and a
    cube's planes one by one through ``section`` (a memory map would leave every page read
    resident in the process: 535 MB for a 335 MB full-frame dark)."""
    from astropy.io import fits

    hdus = fits.open(path, memmap=False)
    try:
        yield hdus
    finally:
        hdus.close()


def read_image(path: str | Path) -> Image:
    """Read what the report shows of a reference file (raises OSError/ValueError when the
    file is not a readable reference file)."""
    with _open(Path(path)) as hdus:
        primary = hdus[0].header
        header = {k: primary[k] for k in (*META_KEYS, *GEOMETRY_KEYS)
                  if primary.get(k) not in (None, "")}
        history = "\n".join(str(h) for h in primary.get("HISTORY", []))
        names = [h.name for h in hdus]
        flags = _flag_names(hdus["DQ_DEF"].data) if "DQ_DEF" in names else {}
        dq = np.asarray(hdus["DQ"].data) if "DQ" in names else None
        if dq is not None and "SCI" not in names:
            if dq.ndim != 2:
                raise ValueError(f"DQ is {dq.ndim}-D, expected 2-D")
            return Image("mask", "DQ", dq, flags=flags, header=header,
                         shape=tuple(map(int, dq.shape)), history=history)
        if "SCI" not in names:
            raise OSError(f"no SCI or DQ array (extensions: {', '.join(names)})")
        sci = hdus["SCI"]
        shape = tuple(int(n) for n in sci.shape)
        if len(shape) < 2:
            raise OSError("the SCI extension has no image")
        if dq is not None and dq.ndim != 2:
            dq = None
        if len(shape) == 2:
            return Image("image", "SCI", np.asarray(sci.data, dtype=np.float64), dq, flags,
                         header, shape, history=history)
        rate, means = _rate_and_means(sci.section, shape)
        return Image("cube", "mean rate (DN/group)", rate, dq, flags, header, shape, means,
                     history)


def plane(section: Any, shape: tuple[int, ...], k: int) -> np.ndarray:
    """Plane ``k`` of a cube (of the first integration of a 4-D array), read alone."""
    return np.asarray(section[(0,) * (len(shape) - 3) + (k,)], dtype=np.float64)


def _rate_and_means(section: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, list[float]]:
    """Least-squares slope per pixel over the planes (DN per group) and each plane's mean,
    reading one plane at a time."""
    n = shape[-3]
    steps = np.arange(n, dtype=np.float64) - (n - 1) / 2
    norm = float((steps ** 2).sum()) or 1.0
    rate = np.zeros(shape[-2:], dtype=np.float64)
    means = []
    for k in range(n):
        values = plane(section, shape, k)
        finite = values[np.isfinite(values)]
        means.append(float(finite.mean()) if finite.size else math.nan)
        rate += steps[k] / norm * values
    return rate, means


def _flag_names(table: Any) -> dict[int, str]:
    try:
        return {int(v): str(n) for v, n in zip(table["VALUE"], table["NAME"], strict=True)}
    except (KeyError, TypeError, ValueError):
        return {}

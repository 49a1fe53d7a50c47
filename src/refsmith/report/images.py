"""Reading a reference file for the report: one 2-D image, its DQ, flags and header.

A cube (a dark: groups x rows x columns) is read one plane at a time from a memory map
and reduced to its mean rate map (the least-squares slope of every pixel over the groups)
and the mean signal of every group, so a full-frame dark of 100 groups costs two 2-D
arrays, not the cube.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Image", "read_image", "robust_std"]

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
    """The HDU list, memory-mapped where astropy can (scaled integers cannot be)."""
    from astropy.io import fits

    hdus = fits.open(path, memmap=True)
    try:
        yield hdus
    finally:
        hdus.close()


def _array(path: Path, hdus: Any, name: str) -> Any:
    """One extension's data: memory-mapped, or read alone when it is scaled (a uint32 DQ
    stored as int32 with BZERO cannot be memory-mapped)."""
    try:
        return hdus[name].data
    except ValueError as exc:
        if "memmap" not in str(exc) and "memory-mapped" not in str(exc):
            raise
        from astropy.io import fits

        return fits.getdata(path, extname=name, memmap=False)


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
        if "DQ" in names and "SCI" not in names:
            dq = np.asarray(_array(Path(path), hdus, "DQ"))
            if dq.ndim != 2:
                raise ValueError(f"DQ is {dq.ndim}-D, expected 2-D")
            return Image("mask", "DQ", dq, flags=flags, header=header,
                         shape=tuple(map(int, dq.shape)), history=history)
        if "SCI" not in names:
            raise OSError(f"no SCI or DQ array (extensions: {', '.join(names)})")
        sci = _array(Path(path), hdus, "SCI")
        if sci is None:
            raise OSError("the SCI extension has no data")
        dq = np.asarray(_array(Path(path), hdus, "DQ")) if "DQ" in names else None
        if dq is not None and dq.ndim != 2:
            dq = None
        shape = tuple(int(n) for n in sci.shape)
        if sci.ndim == 2:
            return Image("image", "SCI", np.array(sci, dtype=np.float64), dq, flags, header,
                         shape, history=history)
        while sci.ndim > 3:  # (nints, ngroups, ny, nx): the first integration
            sci = sci[0]
        rate, means = _rate_and_means(sci)
        return Image("cube", "mean rate (DN/group)", rate, dq, flags, header, shape, means,
                     history)


def _rate_and_means(cube: Any) -> tuple[np.ndarray, list[float]]:
    """Least-squares slope per pixel over the planes (DN per group) and each plane's mean,
    reading one plane at a time."""
    n = cube.shape[0]
    steps = np.arange(n, dtype=np.float64) - (n - 1) / 2
    norm = float((steps ** 2).sum()) or 1.0
    rate = np.zeros(cube.shape[1:], dtype=np.float64)
    means = []
    for k in range(n):
        plane = np.asarray(cube[k], dtype=np.float64)
        finite = plane[np.isfinite(plane)]
        means.append(float(finite.mean()) if finite.size else math.nan)
        rate += steps[k] / norm * plane
    return rate, means


def _flag_names(table: Any) -> dict[int, str]:
    try:
        return {int(v): str(n) for v, n in zip(table["VALUE"], table["NAME"], strict=True)}
    except (KeyError, TypeError, ValueError):
        return {}

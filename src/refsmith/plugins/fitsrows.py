"""Reading rows of a FITS image extension from disk, in bounded memory.

A calibrated ramp is ``(nints, ngroups, ny, nx)``; rows ``y0:y1`` of every plane are
``nints x ngroups`` contiguous runs of bytes in the file. :class:`ImageRows` reads exactly
those with ``os.preadv`` into one buffer, so a block costs its own size in memory and
nothing more. Measured on a full-frame 20-group float32 ramp (335 MB, page cache warm):
all rows in blocks of 64 rows in 0.05 s; astropy's ``section`` took 0.27 s; a memory map
took 0.08 s but left the whole file resident in the process (434 MB RSS), which is what
the plug-ins must not do.

Files that are not plain FITS on disk (gzip, bzip2: the first bytes are not ``SIMPLE``)
are read through astropy's ``section`` instead, which decompresses as it goes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ImageRows"]

_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
# BZERO that turns a signed FITS integer into its unsigned counterpart
_UNSIGNED = {16: (2**15, np.uint16), 32: (2**31, np.uint32), 64: (2**63, np.uint64)}


class ImageRows:
    """One image extension of a FITS file, read by ranges of rows.

    Parameters
    ----------
    path : str
        The FITS file.
    extension : str or int
        Extension name (``SCI``, ``GROUPDQ`` ...) or index.

    Attributes
    ----------
    shape : tuple of int
        The array's shape in numpy order (rows are the second-to-last axis).
    dtype : numpy.dtype
        The dtype of what :meth:`read` returns (native byte order; scaled integers
        become float64, unsigned conventions their unsigned type).
    """

    def __init__(self, path: str, extension: str | int) -> None:
        from astropy.io import fits

        self.path = str(path)
        self.extension = extension
        with fits.open(self.path, memmap=False, lazy_load_hdus=True) as hdus:
            index = hdus.index_of(extension)
            header = hdus[index].header
            self._offset = int(hdus.fileinfo(index)["datLoc"])
        naxis = int(header.get("NAXIS", 0))
        self.shape = tuple(int(header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
        if len(self.shape) < 2:
            raise ValueError(f"{self.path}[{extension}] is not an image (shape {self.shape})")
        bitpix = int(header["BITPIX"])
        self._raw = np.dtype(_BITPIX[bitpix])
        bzero, bscale = header.get("BZERO", 0), header.get("BSCALE", 1)
        unsigned = _UNSIGNED.get(bitpix)
        self._flip = bool(unsigned and bscale == 1 and bzero == unsigned[0])
        self._scale = None if self._flip or (bzero == 0 and bscale == 1) else (bscale, bzero)
        if self._flip:
            self.dtype = np.dtype(unsigned[1])
        elif self._scale:
            self.dtype = np.dtype(np.float64)
        else:
            self.dtype = self._raw.newbyteorder("=")
        with open(self.path, "rb") as stream:
            self._plain = stream.read(6) == b"SIMPLE"

    @property
    def planes(self) -> tuple[int, ...]:
        """The leading dimensions (everything but rows and columns)."""
        return self.shape[:-2]

    def read(self, rows: slice | Sequence[int] | np.ndarray,
             planes: tuple[Any, ...] = (), dtype: Any = None) -> np.ndarray:
        """Rows of every selected plane, ``(*selected planes, len(rows), nx)``.

        Parameters
        ----------
        rows : slice or sequence of int
            A contiguous range (``slice(y0, y1)``) or row indices (any order).
        planes : tuple
            Index per leading dimension (int, slice or index list); missing ones mean all.
            An int keeps its axis (length 1), so the result always has every axis.
        dtype : dtype, optional
            Convert to this type (default :attr:`dtype`).
        """
        ny, nx = self.shape[-2:]
        row_index = np.arange(ny)[rows]
        selected = [np.atleast_1d(np.arange(n)[planes[i] if i < len(planes) else slice(None)])
                    for i, n in enumerate(self.planes)]
        out_dtype = np.dtype(dtype) if dtype is not None else self.dtype
        out = np.empty((*(len(s) for s in selected), len(row_index), nx), out_dtype)
        if not self._plain:
            return self._read_section(selected, row_index, out)
        runs = _runs(row_index)
        buffer = np.empty(len(row_index) * nx, self._raw)
        view = memoryview(buffer).cast("B")
        row_bytes = nx * self._raw.itemsize
        strides = np.cumprod((1, *reversed(self.planes)))[:-1][::-1]  # planes per index
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for where in np.ndindex(*out.shape[:-2]):
                plane = sum(int(s[w]) * int(k) for s, w, k in zip(selected, where, strides,
                                                                  strict=True))
                filled = 0
                for start, count in runs:
                    offset = self._offset + (plane * ny + start) * row_bytes
                    _pread_exact(fd, view[filled:filled + count * row_bytes], offset, self.path)
                    filled += count * row_bytes
                out[where] = self._convert(buffer).reshape(len(row_index), nx)
        finally:
            os.close(fd)
        return out

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        if self._flip:  # signed with BZERO = 2**(bits-1): flip the sign bit
            native = raw.astype(raw.dtype.newbyteorder("=")).view(self.dtype)
            return native ^ self.dtype.type(1 << (self.dtype.itemsize * 8 - 1))
        if self._scale:
            bscale, bzero = self._scale
            return raw.astype(np.float64) * bscale + bzero
        return raw

    def _read_section(self, selected: list[np.ndarray], row_index: np.ndarray,
                      out: np.ndarray) -> np.ndarray:
        from astropy.io import fits

        with fits.open(self.path, memmap=False) as hdus:
            section = hdus[self.extension].section
            for where in np.ndindex(*out.shape[:-2]):
                plane = tuple(int(s[w]) for s, w in zip(selected, where, strict=True))
                filled = 0
                for start, count in _runs(row_index):
                    out[where][filled:filled + count] = section[
                        (*plane, slice(start, start + count))]
                    filled += count
        return out


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive runs ``(start, count)`` of row indices, in the order given."""
    runs: list[tuple[int, int]] = []
    for row in (int(r) for r in rows):
        if runs and runs[-1][0] + runs[-1][1] == row:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((row, 1))
    return runs


def _pread_exact(fd: int, view: memoryview, offset: int, path: str) -> None:
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise OSError(f"{path}: the file ends before its data (truncated?)")
        done += got

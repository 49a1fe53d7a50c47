"""One final reference file as the report shows it: statistics, picture, provenance."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RefFileView", "Source", "describe_reffile", "robust_std", "sources_of"]

MAX_DISPLAY = 512
"""Images are shown with at most this many pixels on a side (strided)."""
_META_KEYS = ("REFTYPE", "DETECTOR", "SUBARRAY", "READPATT", "USEAFTER", "PEDIGREE", "DESCRIP")
_INDIVIDUAL = re.compile(r"individual \| file=(.+?)(?=refsmith |$)")
_RAW = re.compile(r"raw=(.+?)\s?\|\s?state=")


@dataclass(frozen=True)
class Source:
    """An individual reference file and the exposures (role, raw path) it was made from."""

    path: str
    exposures: tuple[tuple[str, str], ...] = ()


@dataclass
class RefFileView:
    """What the report shows of one final reference file."""

    path: Path
    recipe: str
    meta: dict[str, str] = field(default_factory=dict)
    array: str = ""
    shape: tuple[int, ...] = ()
    stats: dict[str, str] = field(default_factory=dict)
    png: bytes | None = None
    error: str = ""
    sources: list[Source] = field(default_factory=list)


def robust_std(values: np.ndarray) -> float:
    """1.4826 x the median absolute deviation of the finite values (NaN when none)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan
    return float(1.4826 * np.median(np.abs(finite - np.median(finite))))


def sources_of(path: Path, plan: Mapping[str, Any], history: str = "") -> list[Source]:
    """The individual files a final file was combined from, each with its exposures.

    Taken from the plan's combine and reffile jobs; for a file the plan does not know,
    from the provenance HISTORY the plug-in framework writes.
    """
    reffiles = {j["output"]: j for j in plan.get("reffile_jobs", [])}
    for job in plan.get("combine_jobs", []):
        if Path(job.get("output", "")) == path:
            return [Source(p, tuple((i.get("role", ""), i.get("exposure", ""))
                                    for i in reffiles.get(p, {}).get("inputs", [])))
                    for p in job.get("inputs", [])]
    text = history.replace("\n", "")
    individual = [m.strip() for m in _INDIVIDUAL.findall(text)]
    if individual:
        return [Source(p) for p in individual]
    raws = [m.strip() for m in _RAW.findall(text)]
    return [Source(str(path), tuple(("", r) for r in raws))] if raws else []


def describe_reffile(path: Path, plan: Mapping[str, Any], *, picture: bool = True,
                     dpi: int = 90) -> RefFileView:
    """Read a reference file's main array; compute its statistics and draw it.

    Parameters
    ----------
    path : Path
        A ``final/<recipe>/*.fits`` file.
    plan : mapping
        The parsed ``plan.json`` (for the file's provenance).
    picture : bool, optional
        Draw the thumbnail and histogram (False: statistics only).
    dpi : int, optional
        Resolution of the picture.

    Returns
    -------
    RefFileView
        ``error`` says why when the file cannot be read.
    """
    view = RefFileView(path=path, recipe=path.parent.name)
    try:
        try:
            data, dq, flags, is_mask, history = _read(path, view, memmap=True)
        except ValueError as exc:  # scaled integers (uint32 DQ) cannot be memory-mapped
            if "memmap" not in str(exc) and "memory-mapped" not in str(exc):
                raise
            data, dq, flags, is_mask, history = _read(path, view, memmap=False)
    except Exception as exc:  # any unreadable file is reported, never fatal
        view.error = f"{type(exc).__name__}: {exc}"
        view.sources = sources_of(path, plan)
        return view
    view.sources = sources_of(path, plan, history)
    if is_mask:
        view.stats = _mask_stats(data)
        if picture:
            view.png = _mask_png(data, flags, dpi)
    else:
        values = data.astype(np.float64, copy=False)
        view.stats = _array_stats(values, dq)
        if picture:
            view.png = _array_png(values, view.array, dpi)
    return view


def _read(path: Path, view: RefFileView, *, memmap: bool) -> tuple[Any, ...]:
    """Main array (2-D), DQ of a non-mask file, flag names, mask or not, HISTORY text."""
    from astropy.io import fits

    with fits.open(path, memmap=memmap) as hdus:
        header = hdus[0].header
        view.meta = {k: str(header[k]) for k in _META_KEYS if header.get(k) not in (None, "")}
        history = "\n".join(str(h) for h in header.get("HISTORY", []))
        names = [h.name for h in hdus]
        is_mask = "DQ" in names and "SCI" not in names
        name = "DQ" if is_mask else "SCI" if "SCI" in names else None
        if name is None:
            raise OSError(f"no SCI or DQ array (extensions: {', '.join(names)})")
        data = hdus[name].data
        if data is None:
            raise OSError(f"the {name} extension has no data")
        view.shape = tuple(int(n) for n in data.shape)
        view.array = name
        if data.ndim > 2:  # e.g. a dark (ngroups, ny, nx): show the last plane
            view.array += f" [plane {data.shape[0] - 1} of {data.shape[0]}]"
        while data.ndim > 2:
            data = data[-1]
        data = np.array(data)
        dq = np.array(hdus["DQ"].data) if "DQ" in names and not is_mask else None
        flags = _flag_names(hdus["DQ_DEF"].data) if "DQ_DEF" in names else {}
    return data, dq, flags, is_mask, history


def _flag_names(table: Any) -> dict[int, str]:
    try:
        return {int(v): str(n) for v, n in zip(table["VALUE"], table["NAME"], strict=True)}
    except (KeyError, TypeError, ValueError):
        return {}


def _fmt(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4g}"


def _array_stats(values: np.ndarray, dq: np.ndarray | None) -> dict[str, str]:
    finite = values[np.isfinite(values)]
    stats = {
        "median": _fmt(float(np.median(finite))) if finite.size else "nan",
        "robust std (1.4826 MAD)": _fmt(robust_std(values)),
        "min / max": (f"{_fmt(float(finite.min()))} / {_fmt(float(finite.max()))}"
                      if finite.size else "nan"),
        "NaN pixels": str(int(np.isnan(values).sum())),
    }
    if dq is not None:
        stats["DQ-flagged pixels"] = str(int(np.count_nonzero(dq)))
    return stats


def _mask_stats(dq: np.ndarray) -> dict[str, str]:
    flagged = int(np.count_nonzero(dq))
    return {"flagged pixels": str(flagged),
            "flagged fraction": f"{flagged / max(dq.size, 1):.3%}",
            "distinct flag values": str(len(np.unique(dq)))}


def _stride(image: np.ndarray) -> np.ndarray:
    step = max(1, math.ceil(max(image.shape) / MAX_DISPLAY))
    return image[::step, ::step]


def _figure(dpi: int) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.6, 3.3), dpi=dpi, layout="constrained")
    return fig, fig.subplots(1, 2, width_ratios=(1.1, 1))


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _array_png(values: np.ndarray, label: str, dpi: int) -> bytes:
    fig, (left, right) = _figure(dpi)
    finite = values[np.isfinite(values)]
    low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    if high <= low:
        low, high = low - 0.5, high + 0.5
    shown = left.imshow(_stride(values), origin="lower", cmap="viridis", vmin=low, vmax=high,
                        interpolation="nearest")
    fig.colorbar(shown, ax=left, shrink=0.9, label=label)
    left.set_title(f"{label} (1-99 percentile stretch)", fontsize=9)
    left.tick_params(labelsize=7)
    if finite.size:
        lo, hi = np.percentile(finite, [0.5, 99.5])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        right.hist(finite.clip(lo, hi), bins=80, color="C0", log=True)
        median = float(np.median(finite))
        right.axvline(median, color="C3", lw=1, label=f"median {median:.4g}")
        right.legend(fontsize=7, frameon=False)
    right.set_title("histogram (0.5-99.5 percentile, clipped)", fontsize=9)
    right.set_ylabel("pixels", fontsize=8)
    right.tick_params(labelsize=7)
    return _png(fig)


def _mask_png(dq: np.ndarray, flags: Mapping[int, str], dpi: int) -> bytes:
    from matplotlib.colors import ListedColormap

    fig, (left, right) = _figure(dpi)
    flagged = (_stride(dq) != 0).astype(np.uint8)
    shown = left.imshow(flagged, origin="lower", cmap=ListedColormap(["#f4f4f4", "black"]),
                        vmin=-0.5, vmax=1.5, interpolation="nearest")
    bar = fig.colorbar(shown, ax=left, shrink=0.9, ticks=[0, 1])
    bar.ax.set_yticklabels(["good", "flagged"], fontsize=7)
    left.set_title("DQ != 0", fontsize=9)
    left.tick_params(labelsize=7)
    values = dq.astype(np.int64, copy=False).ravel()
    bits = [b for b in range(32) if np.any(values & (1 << b))]
    counts = [int(np.count_nonzero(values & (1 << b))) for b in bits]
    names = [flags.get(1 << b, f"bit {b}") for b in bits]
    if bits:
        right.barh(range(len(bits)), counts, color="C1", log=max(counts) > 50 * min(counts))
        right.set_yticks(range(len(bits)), names, fontsize=7)
        right.invert_yaxis()
    else:
        right.text(0.5, 0.5, "no pixel flagged", ha="center", va="center")
    right.set_title("pixels per flag", fontsize=9)
    right.tick_params(axis="x", labelsize=7)
    return _png(fig)

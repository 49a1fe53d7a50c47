"""One final reference file as the report shows it: statistics, pictures, comparison with
its baseline, per-amplifier statistics and provenance."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from refsmith.report.baselines import Baseline
from refsmith.report.compare import Comparison, compare_images
from refsmith.report.geometry import amplifiers, reference_pixels
from refsmith.report.images import Image, read_image, robust_std

__all__ = ["RefFileView", "Source", "describe_reffile", "robust_std", "sources_of"]

_INDIVIDUAL = re.compile(r"individual \| file=(.+?)(?=refsmith |$)")
_RAW = re.compile(r"raw=(.+?)\s?\|\s?state=")


@dataclass(frozen=True)
class Source:
    """An individual reference file and the exposures (role, raw path) it was made from."""

    path: str
    exposures: tuple[tuple[str, str], ...] = ()


@dataclass
class RefFileView:
    """What the report shows of one final reference file (no arrays kept)."""

    path: Path
    recipe: str
    kind: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    array: str = ""
    shape: tuple[int, ...] = ()
    stats: dict[str, str] = field(default_factory=dict)
    amps: list[tuple[str, ...]] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    png: bytes | None = None
    error: str = ""
    sources: list[Source] = field(default_factory=list)
    baseline: Baseline | None = None
    comparison: Comparison | None = None
    comparison_png: bytes | None = None
    comparison_error: str = ""


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
                     dpi: int = 90, baseline: Baseline | None = None,
                     nsigma: float = 5.0) -> RefFileView:
    """Read a reference file; compute its statistics, draw it, compare it with a baseline.

    Parameters
    ----------
    path : Path
        A ``final/<recipe>/*.fits`` file.
    plan : mapping
        The parsed ``plan.json`` (for the file's provenance).
    picture : bool, optional
        Draw the pictures (False: statistics and verdict only).
    dpi : int, optional
        Resolution of the pictures.
    baseline : Baseline, optional
        What to compare the file with (None: no comparison).
    nsigma : float, optional
        Changed pixels: difference beyond this many sigma.

    Returns
    -------
    RefFileView
        ``error`` says why when the file cannot be read. At most two 2-D images (the
        file's, its baseline's) are held while it runs; a cube is read plane by plane.
    """
    from refsmith.report import plots

    view = RefFileView(path=path, recipe=path.parent.name)
    try:
        image = read_image(path)
    except Exception as exc:  # any unreadable file is reported, never fatal
        view.error = f"{type(exc).__name__}: {exc}"
        view.sources = sources_of(path, plan)
        return view
    view.sources = sources_of(path, plan, image.history)
    view.header = image.header
    view.meta = {k: str(image.header[k]) for k in ("REFTYPE", "DETECTOR", "SUBARRAY",
                                                   "READPATT", "USEAFTER", "PEDIGREE",
                                                   "DESCRIP") if k in image.header}
    view.shape, view.array, view.kind = image.shape, image.label, image.kind
    refpix = reference_pixels(image.header, image.data.shape)
    science = ~refpix if refpix is not None else np.ones(image.data.shape, bool)
    if image.kind == "mask":
        view.stats, view.flags = _mask_stats(image, refpix)
        view.amps = _amp_rows(image, science, mask=True)
        if picture:
            view.png = plots.mask_png(image.data, view.flags, dpi)
    else:
        view.stats = _array_stats(image, science, refpix is not None)
        view.amps = _amp_rows(image, science, mask=False)
        if picture:
            view.png = (plots.dark_png(image.data, image.group_means, dpi)
                        if image.kind == "cube" else plots.array_png(image.data, "SCI", dpi))
    view.baseline = baseline
    if baseline is not None and baseline.path is not None:
        _compare(view, image, baseline.path, nsigma, dpi if picture else 0)
    return view


def _compare(view: RefFileView, image: Image, path: Path, nsigma: float, dpi: int) -> None:
    from refsmith.report import plots

    try:
        other = read_image(path)
    except Exception as exc:  # an unreadable baseline is reported, never fatal
        view.comparison_error = f"{path}: cannot be read ({type(exc).__name__}: {exc})"
        return
    result = compare_images(image, other, nsigma=nsigma, new_name=str(view.path),
                            base_name=str(path))
    del other
    if dpi and result.changed_map is not None:
        view.comparison_png = plots.comparison_png(
            result.diff, result.changed_map, result.sigma, nsigma, dpi,
            flagging=(result.newly_flagged, result.unflagged))
    result.diff = result.changed_map = None
    view.comparison = result


def _fmt(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4g}"


def _array_stats(image: Image, science: np.ndarray, known: bool) -> dict[str, str]:
    values = image.data[science] if known else image.data.ravel()
    finite = values[np.isfinite(values)]
    where = " (science pixels)" if known else ""
    stats = {
        f"median{where}": _fmt(float(np.median(finite))) if finite.size else "nan",
        "robust std (1.4826 MAD)": _fmt(robust_std(values)),
        "min / max": (f"{_fmt(float(finite.min()))} / {_fmt(float(finite.max()))}"
                      if finite.size else "nan"),
        "NaN pixels": str(int(np.isnan(image.data).sum())),
    }
    if image.dq is not None:
        stats["DQ-flagged pixels"] = str(int(np.count_nonzero(image.dq)))
    if image.group_means:
        stats["groups"] = str(len(image.group_means))
        stats["mean signal, first / last group"] = (f"{_fmt(image.group_means[0])} / "
                                                   f"{_fmt(image.group_means[-1])}")
    return stats


def _mask_stats(image: Image, refpix: np.ndarray | None) -> tuple[dict[str, str],
                                                                  dict[str, int]]:
    dq = image.data
    flagged = dq != 0
    science = ~refpix if refpix is not None else np.ones(dq.shape, bool)
    n_science = int(science.sum())
    bad = int((flagged & science).sum())
    stats = {"flagged pixels (all)": str(int(flagged.sum())),
             "flagged fraction (all)": f"{flagged.sum() / max(dq.size, 1):.3%}"}
    if refpix is not None:
        stats["reference pixels"] = str(int(refpix.sum()))
        stats["flagged science pixels"] = str(bad)
        stats["flagged science fraction"] = f"{bad / max(n_science, 1):.3%}"
    else:
        stats["reference pixels"] = "unknown (no SUBSTRT1/2): counted as science"
    values = dq[science].astype(np.int64, copy=False)
    counts = {}
    for bit in range(32):
        n = int(np.count_nonzero(values & (1 << bit)))
        if n:
            counts[image.flags.get(1 << bit, f"bit {bit}")] = n
    return stats, counts


def _amp_rows(image: Image, science: np.ndarray, *, mask: bool) -> list[tuple[str, ...]]:
    """(amplifier, columns, median, robust std) or, for a mask, (amplifier, columns,
    flagged science pixels, fraction)."""
    rows = []
    for amp in amplifiers(image.header, image.data.shape):
        cols = np.flatnonzero(amp.columns)
        span = f"{cols[0]}-{cols[-1]}" if cols.size else ""
        keep = science[:, amp.columns]
        values = image.data[:, amp.columns][keep]
        if mask:
            n = int(np.count_nonzero(values))
            rows.append((amp.name, span, str(n), f"{n / max(values.size, 1):.3%}"))
        else:
            finite = values[np.isfinite(values)]
            rows.append((amp.name, span, _fmt(float(np.median(finite))) if finite.size
                         else "nan", _fmt(robust_std(values))))
    return rows

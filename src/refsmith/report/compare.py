"""Comparing a reference file with a baseline: difference, changed pixels, a verdict.

Images (and the mean rate maps of cubes) are compared pixel by pixel: the difference
``new - baseline``, its noise sigma (:func:`noise_sigma`), the fraction of pixels whose
difference exceeds ``nsigma`` sigma, and the median ratio. Masks are compared by which
pixels are flagged. A subarray file is compared with the matching cut-out of a
full-frame baseline (``SUBSTRT1/2``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from refsmith.errors import RefsmithError
from refsmith.report.images import Image, read_image, robust_std

__all__ = ["CHANGED_FRACTION", "MEDIAN_TOLERANCE", "Comparison", "compare_files",
           "compare_images", "noise_sigma"]

NSIGMA = 5.0
"""A pixel has changed when its difference exceeds this many sigma."""
MIN_RELATIVE = 1e-3
"""Differences below this fraction of the baseline's median level are no change, whatever
sigma (a map constant per amplifier has a noise of 0)."""
CHANGED_FRACTION = 0.01
"""More changed pixels than this fraction make the verdict ``changed``."""
MEDIAN_TOLERANCE = 0.02
"""A median ratio further than this from 1 makes the verdict ``changed``."""


@dataclass
class Comparison:
    """A file against its baseline.

    ``verdict`` is ``identical``, ``consistent``, ``changed`` or ``incomparable``;
    ``line`` says it in one sentence; ``diff`` is the 2-D difference (None for masks or
    when incomparable), ``changed_map`` the pixels counted as changed.
    """

    new: str
    baseline: str
    verdict: str
    line: str
    kind: str = ""
    label: str = ""
    pixels: int = 0
    changed: int = 0
    fraction: float = 0.0
    sigma: float = math.nan
    nsigma: float = NSIGMA
    threshold: float = math.nan  # |diff| above this counts as changed
    median_diff: float = math.nan
    median_ratio: float = math.nan
    newly_flagged: int = 0
    unflagged: int = 0
    diff: np.ndarray | None = field(default=None, repr=False)
    changed_map: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (no arrays; NaN as None)."""
        out = {k: getattr(self, k) for k in (
            "new", "baseline", "verdict", "line", "kind", "label", "pixels", "changed",
            "fraction", "sigma", "nsigma", "threshold", "median_diff", "median_ratio",
            "newly_flagged", "unflagged")}
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in out.items()}


def _fmt(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4g}"


def _cutout(base: Image, new: Image) -> np.ndarray | None:
    """The baseline's pixels under the new file: the same array, or the subarray of a
    larger baseline at the new file's SUBSTRT1/2 (1-based, full-frame coordinates)."""
    if base.data.shape == new.data.shape:
        return base.data
    x0 = int(new.header.get("SUBSTRT1", 0)) - int(base.header.get("SUBSTRT1", 1))
    y0 = int(new.header.get("SUBSTRT2", 0)) - int(base.header.get("SUBSTRT2", 1))
    ny, nx = new.data.shape
    if "SUBSTRT1" not in new.header or x0 < 0 or y0 < 0 or \
            y0 + ny > base.data.shape[0] or x0 + nx > base.data.shape[1]:
        return None
    return base.data[y0:y0 + ny, x0:x0 + nx]


def noise_sigma(diff: np.ndarray) -> float:
    """The noise of a difference image: 1.4826 MAD of the differences of horizontally
    adjacent pixels over sqrt(2). Unlike the scatter of the values, it does not grow
    when a whole region (or half the image) changed; NaN when nothing is finite."""
    if diff.shape[-1] < 2:
        return robust_std(diff)
    return robust_std(np.diff(diff, axis=-1)) / math.sqrt(2)


def compare_images(new: Image, base: Image, *, nsigma: float = NSIGMA, new_name: str = "",
                   base_name: str = "") -> Comparison:
    """Compare two read reference files (see the module docstring)."""
    result = Comparison(new_name, base_name, "incomparable", "", new.kind, new.label,
                        nsigma=nsigma)
    if (new.kind == "mask") != (base.kind == "mask"):
        article = {"image": "an image", "cube": "a cube", "mask": "a mask"}
        result.line = (f"{article.get(new.kind, new.kind)} cannot be compared with "
                       f"{article.get(base.kind, base.kind)}")
        return result
    reference = _cutout(base, new)
    if reference is None:
        shapes = " x ".join(map(str, new.data.shape)), " x ".join(map(str, base.data.shape))
        result.line = f"cannot compare: {shapes[0]} pixels against {shapes[1]}"
        return result
    result.pixels = int(new.data.size)
    if new.kind == "mask":
        return _compare_masks(new.data, reference, result)
    diff = new.data - reference
    finite = np.isfinite(diff)
    if np.array_equal(new.data, reference, equal_nan=True):
        result.verdict, result.sigma, result.median_diff = "identical", 0.0, 0.0
        result.median_ratio, result.diff = 1.0, diff
        result.changed_map = np.zeros(diff.shape, bool)
        result.line = "identical"
        return result
    sigma = noise_sigma(diff)
    result.sigma = sigma
    result.median_diff = float(np.median(diff[finite])) if finite.any() else math.nan
    base_median = float(np.nanmedian(reference)) if np.isfinite(reference).any() else math.nan
    if math.isfinite(base_median) and base_median != 0:
        result.median_ratio = float(np.nanmedian(new.data)) / base_median
    threshold = nsigma * sigma if sigma > 0 else 0.0
    floor = MIN_RELATIVE * abs(base_median) if math.isfinite(base_median) else 0.0
    threshold = result.threshold = max(threshold, floor)  # a smooth map has no noise
    changed = ~finite | (np.abs(np.where(finite, diff, 0.0)) > threshold)
    # NaN on both sides is no change
    changed &= ~(np.isnan(new.data) & np.isnan(reference))
    result.changed_map, result.diff = changed, diff
    result.changed = int(changed.sum())
    result.fraction = result.changed / max(result.pixels, 1)
    off = (math.isfinite(result.median_ratio)
           and abs(result.median_ratio - 1) > MEDIAN_TOLERANCE)
    result.verdict = "changed" if result.fraction > CHANGED_FRACTION or off else "consistent"
    result.line = (f"{result.verdict}: median ratio {_fmt(result.median_ratio)}, median "
                   f"difference {_fmt(result.median_diff)}, {result.fraction:.2%} of pixels "
                   f"changed by > {nsigma:g} sigma (sigma {_fmt(sigma)}: |difference| > "
                   f"{_fmt(threshold)}" + (f", the floor of {MIN_RELATIVE:.1%} of the baseline "
                                           "median)" if floor >= nsigma * sigma else ")"))
    return result


def _compare_masks(new: np.ndarray, base: np.ndarray, result: Comparison) -> Comparison:
    new_bad, base_bad = new != 0, base != 0
    result.newly_flagged = int((new_bad & ~base_bad).sum())
    result.unflagged = int((base_bad & ~new_bad).sum())
    result.changed_map = new_bad != base_bad
    result.changed = result.newly_flagged + result.unflagged
    result.fraction = result.changed / max(result.pixels, 1)
    if np.array_equal(new, base):
        result.verdict, result.line = "identical", "identical"
        return result
    result.verdict = "changed" if result.fraction > CHANGED_FRACTION else "consistent"
    result.line = (f"{result.verdict}: {result.newly_flagged} pixels newly flagged, "
                   f"{result.unflagged} no longer flagged ({result.fraction:.2%} of pixels)"
                   + ("" if result.changed else "; flag values differ"))
    return result


def compare_files(new: str | Path, baseline: str | Path, *,
                  nsigma: float = NSIGMA) -> Comparison:
    """Read and compare two reference files.

    Raises
    ------
    RefsmithError
        Naming the file that cannot be read as a reference file, and why.
    """
    images = []
    for path in (new, baseline):
        if not Path(path).is_file():
            raise RefsmithError(f"{path}: no such file")
        try:
            images.append(read_image(path))
        except Exception as exc:  # any unreadable file: one line naming it
            raise RefsmithError(f"{path}: cannot be read as a reference file "
                                f"({type(exc).__name__}: {exc})") from None
    return compare_images(images[0], images[1], nsigma=nsigma, new_name=str(new),
                          base_name=str(baseline))

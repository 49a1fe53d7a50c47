"""The report's pictures of reference files (matplotlib, imported when drawing, Agg).

Each function returns PNG bytes; images are strided to at most :data:`MAX_DISPLAY`
pixels on a side.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["array_png", "comparison_png", "dark_png", "mask_png"]

MAX_DISPLAY = 512
"""Images are shown with at most this many pixels on a side (strided)."""
CHANGED_COLOUR = "#e6007e"
"""Pixels whose flagging changed (a colour the page's CSS does not use)."""


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


def _image(fig: Any, ax: Any, values: np.ndarray, label: str, *, cmap: str = "viridis",
           symmetric: bool = False) -> None:
    finite = values[np.isfinite(values)]
    low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    if symmetric:
        high = max(abs(low), abs(high)) or 1.0
        low = -high
    if high <= low:
        low, high = low - 0.5, high + 0.5
    shown = ax.imshow(_stride(values), origin="lower", cmap=cmap, vmin=low, vmax=high,
                      interpolation="nearest")
    fig.colorbar(shown, ax=ax, shrink=0.9, label=label)
    ax.set_title(f"{label} (1-99 percentile stretch)", fontsize=9)
    ax.tick_params(labelsize=7)


def _histogram(ax: Any, values: np.ndarray, title: str, *, mark: float | None = None,
               mark_label: str = "") -> None:
    finite = values[np.isfinite(values)]
    if finite.size:
        lo, hi = np.percentile(finite, [0.5, 99.5])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        ax.hist(finite.clip(lo, hi), bins=80, color="C0", log=True)
        if mark is not None:
            ax.axvline(mark, color="C3", lw=1, label=mark_label)
            ax.legend(fontsize=7, frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("pixels", fontsize=8)
    ax.tick_params(labelsize=7)


def array_png(values: np.ndarray, label: str, dpi: int) -> bytes:
    """The image (1-99 percentile stretch) and the histogram of its values."""
    fig, (left, right) = _figure(dpi)
    _image(fig, left, values, label)
    finite = values[np.isfinite(values)]
    median = float(np.median(finite)) if finite.size else None
    _histogram(right, values, "histogram (0.5-99.5 percentile, clipped)", mark=median,
               mark_label=f"median {median:.4g}" if median is not None else "")
    return _png(fig)


def dark_png(rate: np.ndarray, means: Sequence[float], dpi: int) -> bytes:
    """A dark's mean rate map and the mean signal of every group."""
    fig, (left, right) = _figure(dpi)
    _image(fig, left, rate, "mean rate (DN/group)")
    right.plot(np.arange(1, len(means) + 1), means, "o-", color="C0", ms=4)
    right.set_xlabel("group", fontsize=8)
    right.set_ylabel("mean signal (DN)", fontsize=8)
    right.set_title("mean signal per group", fontsize=9)
    right.tick_params(labelsize=7)
    return _png(fig)


def mask_png(dq: np.ndarray, counts: Mapping[str, int], dpi: int) -> bytes:
    """Where pixels are flagged, and the science pixels per flag."""
    from matplotlib.colors import ListedColormap

    fig, (left, right) = _figure(dpi)
    flagged = (_stride(dq) != 0).astype(np.uint8)
    shown = left.imshow(flagged, origin="lower", cmap=ListedColormap(["#f4f4f4", "black"]),
                        vmin=-0.5, vmax=1.5, interpolation="nearest")
    bar = fig.colorbar(shown, ax=left, shrink=0.9, ticks=[0, 1])
    bar.ax.set_yticklabels(["good", "flagged"], fontsize=7)
    left.set_title("DQ != 0", fontsize=9)
    left.tick_params(labelsize=7)
    names, values = list(counts), list(counts.values())
    if names:
        right.barh(range(len(names)), values, color="C1",
                   log=max(values) > 50 * max(min(values), 1))
        right.set_yticks(range(len(names)), names, fontsize=7)
        right.invert_yaxis()
    else:
        right.text(0.5, 0.5, "no science pixel flagged", ha="center", va="center")
    right.set_title("science pixels per flag (reference pixels left out)", fontsize=9)
    right.tick_params(axis="x", labelsize=7)
    return _png(fig)


def comparison_png(diff: np.ndarray | None, changed: np.ndarray, sigma: float, nsigma: float,
                   dpi: int, flagging: tuple[int, int] = (0, 0)) -> bytes:
    """The difference new - baseline and the histogram of the differences with the
    +-N sigma limits; for masks, the pixels whose flagging changed and the counts of
    ``flagging`` (newly flagged, no longer flagged)."""
    fig, (left, right) = _figure(dpi)
    if diff is None:  # masks
        from matplotlib.colors import ListedColormap

        left.imshow(_stride(changed).astype(np.uint8), origin="lower", vmin=-0.5, vmax=1.5,
                    cmap=ListedColormap(["#f4f4f4", CHANGED_COLOUR]), interpolation="nearest")
        left.set_title(f"flagging changed ({int(changed.sum())} pixels, magenta)", fontsize=9)
        left.tick_params(labelsize=7)
        bars = right.bar(["newly flagged", "no longer flagged"], flagging,
                         color=[CHANGED_COLOUR, "C0"])
        right.bar_label(bars, fontsize=8)
        right.set_title("pixels whose flagging changed", fontsize=9)
        right.set_ylabel("pixels", fontsize=8)
        right.tick_params(labelsize=7)
        return _png(fig)
    _image(fig, left, diff, "new - baseline", cmap="RdBu_r", symmetric=True)
    _histogram(right, diff, f"differences; |diff| > {nsigma:g} sigma: {int(changed.sum())} "
               "pixels")
    if math.isfinite(sigma) and sigma > 0:
        for sign in (-1, 1):
            right.axvline(sign * nsigma * sigma, color="C3", lw=1, ls="--")
    return _png(fig)

"""Helpers shared by the built-in plug-ins."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from refsmith.plugins.blocks import Block
from refsmith.plugins.builtin.declarations import flag_value
from refsmith.plugins.inputs import GroupInputs, InputFile
from refsmith.plugins.stats import clipped_stats, pooled_sigma

__all__ = ["dq_def", "fill_nonfinite", "flag_value", "group_steps", "pairs", "pooled_floor",
           "require_ramps", "scatter", "stack_copies"]


_DESCRIPTIONS = {
    "DO_NOT_USE": "Bad pixel. Do not use.",
    "DEAD": "Dead pixel",
    "HOT": "Hot pixel",
    "LOW_QE": "Low quantum efficiency",
    "UNRELIABLE_SLOPE": "Slope variance large (noisy pixel)",
    "UNRELIABLE_BIAS": "Bias variance large",
    "UNRELIABLE_DARK": "Dark variance large",
    "REFERENCE_PIXEL": "Pixel is a reference pixel",
}


def dq_def(names: Iterable[str]) -> np.ndarray:
    """A ``dq_def`` table (BIT, VALUE, NAME, DESCRIPTION) for these flag names."""
    rows = []
    for name in dict.fromkeys(n.upper() for n in names):
        value = flag_value(name)
        rows.append((value.bit_length() - 1, value, name, _DESCRIPTIONS.get(name, name)))
    return np.array(rows, dtype=[("BIT", "<i4"), ("VALUE", "<u4"), ("NAME", "S40"),
                                 ("DESCRIPTION", "S80")])


def fill_nonfinite(array: np.ndarray, value: float | None = None,
                   where: np.ndarray | None = None) -> np.ndarray:
    """Replace NaN/inf in place by ``value`` (default: the median of the finite values).

    The median is taken over at most ~10**6 evenly spaced values, so a large array costs
    no copy of itself. ``where``, a map of the last two axes, says which pixels can hold
    non-finite values: only those are looked at (a full-frame 20-group cube is 335 MB).
    Returns the array.
    """
    part = array[..., where] if where is not None else array
    bad = ~np.isfinite(part)
    if not bad.any():
        return array
    if value is None:
        flat = array.reshape(-1)
        sample = flat[::max(1, flat.size // 1_000_000)]
        finite = sample[np.isfinite(sample)]
        value = float(np.median(finite)) if finite.size else 0.0
    part[bad] = value
    if where is not None:
        array[..., where] = part
    return array


def require_ramps(files: Sequence[InputFile], needs: str, steps: str,
                  min_groups: int = 1) -> None:
    """ValueError unless every file is a ramp of at least ``min_groups`` groups.

    ``needs`` names what is being made ("read noise"), ``steps`` the state to ask for.
    """
    for item in files:
        shape = item.shape
        if len(shape) != 4:
            raise ValueError(f"{item.role} is not a ramp (ints x groups x rows x columns) but "
                             f"{len(shape)}-D {shape} ({item.path}): {needs} needs inputs "
                             f"calibrated before ramp_fit (steps: {steps})")
        if shape[1] < min_groups:
            raise ValueError(f"{item.role} has {shape[1]} group(s) ({item.path}); {needs} "
                             f"needs at least {min_groups}")


def scatter(samples: np.ndarray, center: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel standard deviation (or RMS about ``center``) over axis 0, and the counts."""
    result = clipped_stats(samples, 0.0, sigma=0.0, center=center)
    return np.sqrt(result.variance), result.count


def pooled_floor(group: GroupInputs, inputs: Sequence[InputFile],
                 samples_of: Callable[[Block], np.ndarray], *, center: float | None = None,
                 **options: Any) -> np.ndarray:
    """The pooled scatter per amplifier, as a floor broadcastable to ``(..., rows, nx)``.

    ``samples_of(block)`` turns a block into ``(n, ..., rows, nx)`` samples; the scatter of
    every pixel of the fixed sample rows (:meth:`GroupInputs.sample`) is pooled per
    amplifier (reference pixels left out) with :func:`pooled_sigma`.
    """
    maps, counts, reference = [], [], []
    for block in group.sample(inputs, **options):
        spread, count = scatter(samples_of(block), center)
        maps.append(spread)
        counts.append(count)
        reference.append(block.reference_pixels)
    spread = np.concatenate(maps, axis=-2)
    count = np.concatenate(counts, axis=-2)
    dof = float(np.median(count)) - (0 if center is not None else 1)
    pooled = pooled_sigma(spread, group.amplifiers(), dof, where=~np.concatenate(reference))
    return pooled[..., group.amplifiers()][..., None, :]


def stack_copies(samples: int) -> float:
    """The memory of a block's work, in blocks, when its ``samples`` per pixel are stacked
    and clipped: the block (float32 data and uint8 GROUPDQ, 5 bytes a sample), the stack
    (4) and the results of ``clipped_stats`` (28 bytes a pixel, whatever the samples)."""
    return (9 * samples + 28) / (5 * samples)


def group_steps(ramp: np.ndarray) -> np.ndarray:
    """Group-to-group differences of a ``(nints, ngroups, rows, nx)`` ramp, in place.

    Returns ``ramp[:, :-1]`` holding ``ramp[:, g + 1] - ramp[:, g]`` (the ramp's data are
    overwritten): ``np.diff`` without a block-sized temporary.
    """
    for group in range(ramp.shape[1] - 1):
        np.subtract(ramp[:, group + 1], ramp[:, group], out=ramp[:, group])
    return ramp[:, :-1]


def pairs(files: Sequence[InputFile]) -> list[tuple[InputFile, InputFile]]:
    """Consecutive pairs (1, 2), (3, 4) ... of ``files`` (an odd last one is not used)."""
    return [(files[i], files[i + 1]) for i in range(0, len(files) - 1, 2)]

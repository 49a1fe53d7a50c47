"""Helpers shared by the built-in plug-ins."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from refsmith.plugins.inputs import InputFile

__all__ = ["dq_def", "fill_nonfinite", "flag_value", "pairs", "stack_integrations"]


def _pixel_flags() -> dict[str, int]:
    from stdatamodels.jwst.datamodels import dqflags

    return dict(dqflags.pixel)


def flag_value(name: str) -> int:
    """The JWST pixel DQ value of a flag name (ValueError naming the known ones)."""
    flags = _pixel_flags()
    try:
        return int(flags[name.upper()])
    except KeyError:
        raise ValueError(f"unknown DQ flag {name!r}; JWST flags: {', '.join(flags)}") from None


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


def fill_nonfinite(array: np.ndarray, value: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Replace NaN/inf by ``value`` (default: the median of the finite values).

    Returns the filled array and the boolean map of what was filled.
    """
    bad = ~np.isfinite(array)
    if not bad.any():
        return array, bad
    if value is None:
        finite = array[~bad]
        value = float(np.median(finite)) if finite.size else 0.0
    return np.where(bad, value, array), bad


def stack_integrations(files: Sequence[InputFile]) -> tuple[np.ndarray, np.ndarray]:
    """All integrations of ``files`` as one ``(n, ngroups, ny, nx)`` stack (bad = NaN).

    Returns the stack and the reference-pixel map of the first file.
    """
    stacks, reference = [], None
    for item in files:
        ramp = item.read()
        if ramp.data.ndim != 4:
            raise ValueError(f"{item.role} {item.path} is not a ramp (shape {ramp.data.shape});"
                             " this plug-in needs calibrated ramps, not rate images")
        if stacks and ramp.data.shape[1:] != stacks[0].shape[1:]:
            raise ValueError(f"{item.role} has ramps of shape {ramp.data.shape[1:]}, the "
                             f"first input {stacks[0].shape[1:]}")
        stacks.append(ramp.masked())
        reference = ramp.reference_pixels if reference is None else reference
    return np.concatenate(stacks, axis=0), reference


def pairs(files: Sequence[InputFile]) -> list[tuple[InputFile, InputFile]]:
    """Consecutive pairs (1, 2), (3, 4) ... of ``files`` (an odd last one is not used)."""
    return [(files[i], files[i + 1]) for i in range(0, len(files) - 1, 2)]

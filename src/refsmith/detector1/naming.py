"""File names of calibrated products: exposure base names, state ids, store paths.

A raw exposure ``jw01234001001_01101_00001_nrca1_uncal.fits`` has the *base name*
``jw01234001001_01101_00001_nrca1``. Its products are ``<base>_<suffix>.fits`` where the
suffix is a step name, ``ramp``, ``rate`` (the pipeline's names) or refsmith's own
``<laststep>_<stateid>``. refsmith writes every calibrated state of an exposure to
``<store>/<base>/<base>_<laststep>_<stateid>.fits``: same exposure and same state give the
same path in every run, different states different paths.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from refsmith.detector1.keywords import STEP_KEYWORDS
from refsmith.detector1.steps import in_order

RAW_SUFFIX = "uncal"

# Suffixes of single-state products that can be a starting point (or an already
# calibrated input). Per-integration and auxiliary products (rateints, 1_ramp_fit,
# gain_scaleints, fitopt, trapsfilled...) are not candidates.
PRODUCT_SUFFIXES: frozenset[str] = frozenset(
    {RAW_SUFFIX, "ramp", "rate", "0_ramp_fit", *STEP_KEYWORDS}
)
_BY_LENGTH = sorted(PRODUCT_SUFFIXES, key=lambda s: (-len(s), s))
_STATE_ID = re.compile(r"_[0-9a-f]{8}$")
_FITS = re.compile(r"\.fits(\.gz)?$", re.IGNORECASE)


def state_id(steps: Iterable[str]) -> str:
    """A short stable id of a calibration state (8 hex digits of the sorted step set)."""
    return _state_id(frozenset(steps))


@functools.lru_cache(maxsize=1024)
def _state_id(steps: frozenset[str]) -> str:
    return hashlib.sha1("+".join(sorted(steps)).encode()).hexdigest()[:8]


def _strip_suffix(stem: str) -> tuple[str, str] | None:
    for suffix in _BY_LENGTH:
        if stem.endswith("_" + suffix) and len(stem) > len(suffix) + 1:
            return stem[: -len(suffix) - 1], suffix
    return None


def product_base(filename: str) -> str | None:
    """The exposure base name of a product file name, or None if it is not a product.

    Examples
    --------
    >>> product_base("jw01_nrca1_dq_init.fits")
    'jw01_nrca1'
    >>> product_base("jw01_nrca1_dark_current_0a1b2c3d.fits")
    'jw01_nrca1'
    >>> product_base("jw01_nrca1_rateints.fits") is None
    True
    """
    return _product_base(os.path.basename(filename))


@functools.lru_cache(maxsize=65536)
def _product_base(name: str) -> str | None:
    if not _FITS.search(name):
        return None
    stem = _FITS.sub("", name)
    if stem.endswith("_1_ramp_fit"):  # the per-integration ramp_fit product
        return None
    if _STATE_ID.search(stem):
        found = _strip_suffix(stem[:-9])
        if found and found[1] in STEP_KEYWORDS:
            return found[0]
    found = _strip_suffix(stem)
    return found[0] if found else None


def exposure_base(path: str) -> str:
    """The base name of a raw exposure (its product base, else the name without .fits)."""
    name = os.path.basename(path)
    if name.endswith("_uncal.fits") and len(name) > 11:
        return name[:-11]  # what _product_base gives for raw names, 10x faster
    return _product_base(name) or _FITS.sub("", name)


def last_step(steps: Iterable[str], instrument: str | None) -> str:
    """The last step of a state in ``instrument``'s pipeline order."""
    ordered = in_order(steps, instrument)
    return ordered[-1] if ordered else RAW_SUFFIX


def store_path(store: Path, base: str, steps: Iterable[str], instrument: str | None,
               kind: str = "product") -> Path:
    """Where refsmith keeps the product of ``base`` at the state ``steps``.

    ``kind='fitopt'`` names the optional ramp-fit product of that state.
    """
    steps = tuple(steps)
    label = "fitopt" if kind == "fitopt" else last_step(steps, instrument)
    return Path(os.path.join(store, base, f"{base}_{label}_{state_id(steps)}.fits"))


def strun_name(base: str, steps: Iterable[str], instrument: str | None, *, final: bool,
               kind: str = "product") -> str:
    """The file name ``strun calwebb_detector1 --output_file=<base>`` gives a product.

    The pipeline's final product is ``<base>_rate.fits`` once ramp_fit ran, else
    ``<base>_ramp.fits``; an intermediate saved with ``--steps.<s>.save_results=True`` is
    ``<base>_<s>.fits`` (``<base>_0_ramp_fit.fits`` for ramp_fit); the optional ramp-fit
    product is ``<base>_fitopt.fits``.
    """
    steps = tuple(steps)
    if kind == "fitopt":
        return f"{base}_fitopt.fits"
    if final:
        return f"{base}_{'rate' if 'ramp_fit' in steps else 'ramp'}.fits"
    step = last_step(steps, instrument)
    return f"{base}_{'0_ramp_fit' if step == 'ramp_fit' else step}.fits"


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_")


def safe_label(text: str) -> str:
    """``text`` reduced to characters safe in a file name or job id."""
    text = str(text)
    if text and _SAFE.issuperset(text) and text[0] != "_" and text[-1] != "_":
        return text  # already safe (most names): 4x faster than the substitution
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"

"""``bad_pixel_mask`` (D+, F+ or DF+): hot and noisy pixels from darks, dead and low-QE
pixels from flats, each from whichever of them the group holds."""

from __future__ import annotations

import functools
import math
import operator
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from refsmith.plugins.blocks import RampBlock, block_rows, row_chunks
from refsmith.plugins.builtin._common import dq_def, flag_value, require_ramps, scatter
from refsmith.plugins.builtin.declarations import BadPixelMask, BadPixelParams
from refsmith.plugins.fitsrows import ImageRows
from refsmith.plugins.inputs import GroupInputs
from refsmith.plugins.kernels import median_columns
from refsmith.plugins.stats import clipped_stats, robust_sigma, robust_zscore

__all__ = ["BadPixelMaskPlugin", "BadPixelParams", "defined_flags", "ramp_slopes", "vote_tested"]

COPIES = 2.5  # the blocks, the stacked darks, slopes and sums (small)
TESTS_LINE = "refsmith mask tests"
"""Start of the HISTORY line that says which tests a mask file ran (and from what)."""


def ramp_slopes(ramps: list[RampBlock], times: np.ndarray, *, noise: bool = True
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Least-squares slope (DN/s) of every integration, ``(n, rows, nx)``; CDS noise.

    The CDS noise (with ``noise``) is the standard deviation of the group-to-group
    differences about their per-integration mean, over every integration (``(rows, nx)``).
    Pixels without missing (NaN) groups, nearly all, take one matrix product (slopes) and
    sums over the groups, one group at a time (noise); the others leave their missing
    groups out of each fit (:func:`_with_gaps`).
    """
    data = np.concatenate([r.data for r in ramps]) if len(ramps) > 1 else ramps[0].data
    nints, ngroups = data.shape[:2]
    if ngroups < 2:
        raise ValueError("slopes need at least 2 groups per integration")
    t = np.asarray(times[:ngroups], np.float64)
    weights = ((t - t.mean()) / np.sum((t - t.mean()) ** 2)).astype(np.float32)
    slopes = np.matmul(weights, data.reshape(nints, ngroups, -1)).reshape(
        nints, *data.shape[2:])
    spread = None
    if noise:
        squares = np.zeros_like(slopes)
        step = np.empty_like(slopes)
        for group in range(1, ngroups):
            np.subtract(data[:, group], data[:, group - 1], out=step)
            np.multiply(step, step, out=step)
            squares += step
        rise = (data[:, -1] - data[:, 0]).astype(np.float64)  # the sum of each ramp's steps
        with np.errstate(invalid="ignore", divide="ignore"):
            residual = (squares.sum(axis=0, dtype=np.float64) -
                        (rise * rise).sum(axis=0) / (ngroups - 1))
            spread = np.sqrt(np.maximum(residual, 0.0) / (nints * (ngroups - 1) - 1))
    gaps = np.isnan(slopes).any(axis=0)
    if gaps.any():
        slopes[:, gaps], gap_noise = _with_gaps(data[..., gaps], t)
        if spread is not None:
            spread[gaps] = gap_noise
    return slopes, spread


def _with_gaps(data: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ramp_slopes` of ``(n, ngroups, m)`` pixels with missing groups."""
    valid = ~np.isnan(data)
    t = np.where(valid, times[None, :, None], 0.0)
    y = np.where(valid, data, 0.0)
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        slopes = ((n * (t * y).sum(axis=1) - t.sum(axis=1) * y.sum(axis=1)) /
                  (n * (t * t).sum(axis=1) - t.sum(axis=1) ** 2))
        steps = np.diff(data, axis=1)
        steps -= np.nanmean(steps, axis=1, keepdims=True)
        noise = np.nanstd(steps.reshape(-1, data.shape[-1]), axis=0, ddof=1)
    return np.where(n >= 2, slopes, np.nan), noise


class BadPixelMaskPlugin(BadPixelMask):
    """Bad pixel mask with the standard JWST flag names, from darks, flats or both.

    From the darks: per-pixel dark current (median over integrations of least-squares
    slopes) -> HOT where it exceeds the median by ``hot_sigma`` times both the map's robust
    sigma and the pixel's own standard error (when it has one: two integrations or more);
    CDS noise -> ``noisy_flag`` where it is ``noisy_sigma`` robust sigma above the median.
    From the flats (dark current subtracted when the group has darks, normalised by the
    median): DEAD below ``dead_fraction``, LOW_QE below ``low_qe_fraction``. A group of
    darks only gets the dark tests, one of flats only the flat tests; DQ_DEF lists the flags
    tested (and DO_NOT_USE, REFERENCE_PIXEL) and a HISTORY line says which tests ran, from
    how many inputs. Reference pixels get REFERENCE_PIXEL only. dq_init ORs the mask into
    every exposure's PIXELDQ. Inputs: ``linearity-`` ramps.

    Individual files that tested different flags (masks of darks and masks of flats) are
    combined flag by flag: a flag is kept where at least ``vote_fraction`` of the files
    that tested it set it (:func:`vote_tested`).
    """

    def make(self, group: GroupInputs, params: BadPixelParams, output_path: str) -> Any:
        from stdatamodels.jwst import datamodels

        darks, flats = group.darks, group.flats
        if not darks and not flats:
            raise ValueError(f"a bad pixel mask needs darks (hot and noisy pixels) or flats "
                             f"(dead and low-QE pixels); group {group.id} has "
                             f"{', '.join(sorted({i.kind for i in group.inputs})) or 'none'}")
        inputs = [*darks, *flats]
        require_ramps(inputs, "a bad pixel mask", self.steps[0], min_groups=2)
        ny, nx = group.frame(inputs)
        # all rows of each map are written
        dark, own_error, noise = ((np.empty((ny, nx), np.float32) for _ in range(3)) if darks
                                  else (None, None, None))
        flat = np.empty((ny, nx), np.float32) if flats else None
        reference = np.zeros((ny, nx), bool)
        held = (1 + 3 * bool(darks) + bool(flats)) * reference.size * 4
        dark_times = darks[0].group_times() if darks else None
        flat_times = flats[0].group_times() if flats else None
        for block in group.blocks(inputs, copies=COPIES, reserve=held):
            here = block.where
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
                if darks:
                    slopes, noise[here] = ramp_slopes(list(block.ramps[:len(darks)]),
                                                      dark_times)
                    dark[here] = median_columns(slopes)
                    spread, n = scatter(slopes)
                    own_error[here] = 1.2533 * spread / np.sqrt(n)
                if flats:
                    flat_slopes, _ = ramp_slopes(list(block.ramps[len(darks):]), flat_times,
                                                 noise=False)
                    flat[here] = clipped_stats(flat_slopes, 0.0, sigma=0.0).mean
            reference[here] = block.reference_pixels
        science = ~reference
        found: dict[str, np.ndarray] = {}
        if darks:
            excess = dark - np.nanmedian(dark[science])
            # one integration in all: no error of its own, the map's sigma decides
            own = np.where(np.isfinite(own_error), own_error, 0.0)
            found["HOT"] = (excess > params.hot_sigma * robust_sigma(dark[science])) & \
                (excess > params.hot_sigma * own)
            found[params.noisy_flag] = robust_zscore(noise, science) > params.noisy_sigma
        if flats:
            if darks:
                flat -= dark
            response = flat / np.nanmedian(flat[science])
            found["DEAD"] = ~(response >= params.dead_fraction)  # NaN (no data) is dead
            found["LOW_QE"] = (response < params.low_qe_fraction) & ~found["DEAD"]

        dq = np.zeros((ny, nx), np.uint32)
        for name, where in found.items():
            value = flag_value(name)
            if name in params.do_not_use:
                value |= flag_value("DO_NOT_USE")
            dq[where & science] |= np.uint32(value)
        dq[reference] = flag_value("REFERENCE_PIXEL")
        model = datamodels.MaskModel(
            dq=dq, dq_def=dq_def(["DO_NOT_USE", *_tested_order(params, found),
                                  "REFERENCE_PIXEL"]))
        model.add_history_entry(tests_line(params, found, len(darks), len(flats)))
        return model  # the framework writes it once, with its metadata

    def combine(self, individual_files: Sequence[str], params: Any, output_path: str) -> Any:
        """The default flag vote, or (files that tested different flags) the vote of each
        flag among the files that tested it (:func:`vote_tested`)."""
        from refsmith.plugins.combine import combine_files

        files = [str(p) for p in individual_files]
        model = combine_files(files, params, None, combine_as=self.combine_as)
        tested = [defined_flags(p) for p in files]
        if len({None if t is None else frozenset(t) for t in tested}) <= 1:
            return model  # every file ran the same tests: the plain vote
        model.dq = vote_tested(files, tested, params.vote_fraction, params.do_not_use)
        names = list(dict.fromkeys(n for t in tested if t is not None for n in t))
        names.sort(key=lambda n: (n != "DO_NOT_USE", n == "REFERENCE_PIXEL"))
        model.dq_def = dq_def(names)
        counts = {n: sum(t is None or n in t for t in tested) for n in names}
        model.add_history_entry(
            f"{TESTS_LINE} combined: each flag voted among the files that tested it: " +
            ", ".join(f"{n} {counts[n]} of {len(files)}" for n in names
                      if n not in ("DO_NOT_USE", "REFERENCE_PIXEL")))
        return model


def _tested_order(params: BadPixelParams, found: dict[str, np.ndarray]) -> list[str]:
    return [n for n in ("DEAD", "HOT", "LOW_QE", params.noisy_flag) if n in found]


def tests_line(params: BadPixelParams, found: dict[str, np.ndarray], darks: int,
               flats: int) -> str:
    """The HISTORY line of an individual mask: the tests that ran, from what, and the rest."""
    from_darks = [n for n in ("HOT", params.noisy_flag) if n in found]
    from_flats = [n for n in ("DEAD", "LOW_QE") if n in found]
    ran = []
    if from_darks:
        ran.append(f"{','.join(from_darks)} from {darks} dark{'s' if darks > 1 else ''}")
    if from_flats:
        ran.append(f"{','.join(from_flats)} from {flats} flat{'s' if flats > 1 else ''}")
    skipped = ([f"HOT,{params.noisy_flag} (no darks)"] if not darks else []) + \
        (["DEAD,LOW_QE (no flats)"] if not flats else [])
    return (f"{TESTS_LINE}: ran {'; '.join(ran)}" +
            (f"; not run: {'; '.join(skipped)}" if skipped else ""))


def defined_flags(path: str) -> dict[str, int] | None:
    """The flags (name -> value) a mask file defines in DQ_DEF (for a bad_pixel_mask file:
    the flags it tested, DO_NOT_USE and REFERENCE_PIXEL); None when it has no DQ_DEF."""
    from astropy.io import fits

    with fits.open(path) as hdus:
        if "DQ_DEF" not in hdus:
            return None
        table = hdus["DQ_DEF"].data
        return {(n.decode() if isinstance(n, bytes) else str(n)).strip(): int(v)
                for n, v in zip(table["NAME"], table["VALUE"], strict=True)}


def vote_tested(files: Sequence[str], tested: Sequence[Mapping[str, int] | None],
                fraction: float, do_not_use: Sequence[str]) -> np.ndarray:
    """Combine mask files flag by flag among the files that tested each flag.

    A bit is set where at least ``fraction`` of the files whose ``tested`` flags (name ->
    value, :func:`defined_flags`) include it set it (a file with ``tested`` None tested
    every flag); a flag no file tested is never set. DO_NOT_USE is also set where a kept
    flag is one of ``do_not_use`` (a dead pixel voted by the masks of flats is not outvoted
    by the masks of darks, which could not see it). Read block by block of rows within the
    job's memory budget.
    """
    voters = np.array([0xFFFFFFFF if flags is None else
                       functools.reduce(operator.or_, flags.values(), 0) for flags in tested],
                      np.uint64)
    readers = [ImageRows(p, "DQ") for p in files]
    ny, nx = readers[0].shape[-2:]
    result = np.zeros((ny, nx), np.uint32)
    size = block_rows(nx * (8 * len(files) + 16), ny, reserve=result.nbytes,
                      what=f"combining {len(files)} masks")
    unusable = np.uint32(functools.reduce(operator.or_, map(flag_value, do_not_use), 0))
    flag_do_not_use = np.uint32(flag_value("DO_NOT_USE"))
    for rows in row_chunks(np.arange(ny), size):
        masks = np.stack([r.read(rows, dtype=np.uint32) for r in readers])
        out = result[rows]
        for bit in range(32):
            value = 1 << bit
            voting = (voters & value) != 0
            if not voting.any():
                continue
            needed = max(math.ceil(fraction * int(voting.sum()) - 1e-9), 1)
            votes = np.count_nonzero(masks[voting] & np.uint32(value), axis=0)
            out[votes >= needed] |= np.uint32(value)
        out[(out & unusable) != 0] |= flag_do_not_use
        result[rows] = out
    return result

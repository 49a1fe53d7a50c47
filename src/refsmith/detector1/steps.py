"""calwebb_detector1 steps: order per instrument, the ``X-`` shorthand, when SKIPPED counts
as done, and how a file's S_* state differs from a wanted one.

The order is taken from the installed ``jwst`` when it can be read (see
:func:`step_order` and :mod:`refsmith.detector1.source`), else from the tested fallback
table below (jwst 3.0.0, ``Detector1Pipeline.process``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from refsmith.detector1 import source
from refsmith.detector1.keywords import STEP_KEYWORDS, canonical_step, normalize_instrument
from refsmith.detector1.reftypes import REQUIRED_REFTYPES, STEP_REFTYPES
from refsmith.errors import ConfigError

log = logging.getLogger(__name__)

FALLBACK_ORDER: dict[str, tuple[str, ...]] = {
    "NIR": (
        "group_scale", "dq_init", "saturation", "ipc", "superbias", "refpix", "linearity",
        "dark_current", "charge_migration", "jump", "picture_frame", "clean_flicker_noise",
        "persistence", "ramp_fit", "gain_scale",
    ),
    "MIRI": (
        "group_scale", "dq_init", "emicorr", "saturation", "ipc", "firstframe", "lastframe",
        "reset", "linearity", "rscd", "dark_current", "refpix", "charge_migration", "jump",
        "picture_frame", "clean_flicker_noise", "persistence", "ramp_fit", "gain_scale",
    ),
}

# Steps the pipeline skips unless asked (Detector1Pipeline defaults in jwst 3.0).
SKIPPED_BY_DEFAULT = frozenset(
    {"emicorr", "firstframe", "persistence", "charge_migration", "picture_frame",
     "clean_flicker_noise"}
)


@functools.lru_cache(maxsize=64)
def step_order(instrument: str) -> tuple[str, ...]:
    """The calwebb_detector1 steps of ``instrument`` in the order the pipeline runs them.

    Read from the installed ``jwst`` (``Detector1Pipeline.process``, parsed with
    :mod:`ast`, never imported); :data:`FALLBACK_ORDER` when that fails.

    Parameters
    ----------
    instrument : str
        INSTRUME value ('NIRCAM', 'MIRI', ...), case-insensitive.

    Returns
    -------
    tuple of str
        Step names in pipeline order.
    """
    name = normalize_instrument(instrument)
    return installed_step_orders()["MIRI" if name == "MIRI" else "NIR"]


@functools.cache
def installed_step_orders() -> dict[str, tuple[str, ...]]:
    """Step orders ``{'NIR': ..., 'MIRI': ...}`` of the installed jwst, else the fallback."""
    path = source.detector1_source()
    orders = source.derive_step_orders(path) if path is not None else None
    if orders is None:
        log.info("using refsmith's calwebb_detector1 step order table (jwst 3.0.0)")
        return dict(FALLBACK_ORDER)
    return orders


def expand_steps(spec: str | Iterable[str], instrument: str) -> tuple[str, ...]:
    """Expand a step list or the ``X-`` shorthand into steps in pipeline order.

    ``'dq_init-'`` means every step of the instrument's order up to and including
    dq_init that the pipeline runs by default: steps skipped by default
    (:data:`SKIPPED_BY_DEFAULT`, e.g. charge_migration, persistence) are part of ``X-``
    only when they are ``X`` itself; list them by name to require them. A list may mix
    names and shorthands. Raises ConfigError for unknown steps or steps the instrument
    does not have.
    """
    order = step_order(instrument)
    items = [spec] if isinstance(spec, str) else list(spec)
    wanted: set[str] = set()
    for item in items:
        for part in str(item).replace(",", " ").split():
            if part.endswith("-"):
                step = canonical_step(part[:-1])
                if step not in order:
                    raise ConfigError(f"step {step!r} does not exist for {instrument}")
                wanted.update(s for s in order[: order.index(step)]
                              if s not in SKIPPED_BY_DEFAULT)
                wanted.add(step)
            else:
                step = canonical_step(part)
                if step not in order:
                    raise ConfigError(f"step {step!r} does not exist for {instrument}")
                wanted.add(step)
    return tuple(s for s in order if s in wanted)


def in_order(steps: Iterable[str], instrument: str | None) -> tuple[str, ...]:
    """Sort step names by ``instrument``'s pipeline order (NIR order when unknown)."""
    rank = _rank(instrument)
    return tuple(sorted(set(steps), key=lambda s: (rank.get(s, len(rank)), s)))


@functools.lru_cache(maxsize=64)
def _rank(instrument: str | None) -> dict[str, int]:
    try:
        order: Sequence[str] = step_order(instrument) if instrument else FALLBACK_ORDER["NIR"]
    except ConfigError:
        order = FALLBACK_ORDER["NIR"]
    return {s: i for i, s in enumerate(order)}


# ---------------------------------------------------------------- SKIPPED as "does not apply"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _group_scale_not_needed(header: Mapping[str, Any]) -> bool:
    nframes, divisor = _int(header.get("NFRAMES")), _int(header.get("FRMDIVSR"))
    if nframes is None or nframes < 1:
        return False
    if divisor is None:
        return nframes & (nframes - 1) == 0
    return nframes == divisor


def _too_few_groups(header: Mapping[str, Any]) -> bool:
    ngroups = _int(header.get("NGROUPS"))
    return ngroups is not None and ngroups <= 2


def _miri_subarray(header: Mapping[str, Any]) -> bool:
    instrument = str(header.get("INSTRUME") or "").upper()
    subarray = str(header.get("SUBARRAY") or "").upper()
    return instrument == "MIRI" and subarray not in ("", "FULL")


def _no_gain_factor(header: Mapping[str, Any]) -> bool:
    instrument = str(header.get("INSTRUME") or "").upper()
    return instrument not in ("", "NIRSPEC") and header.get("GAINFACT") is None


def _emicorr_not_implemented(header: Mapping[str, Any]) -> bool:
    readpatt = str(header.get("READPATT") or "").upper()
    return readpatt not in ("", "FAST", "FASTR1", "SLOW", "SLOWR1")


# step -> (header keywords the rule reads, predicate "the pipeline would skip it", why).
# A recorded SKIPPED counts as done only when the predicate holds on the file's header;
# otherwise SKIPPED is "not done". Verified in jwst 3.0.0:
NOT_APPLICABLE: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, Any]], bool], str]] = {
    # group_scale/group_scale_step.py:56-69: no FRMDIVSR and NFRAMES a power of 2, or
    # NFRAMES == FRMDIVSR -> "correction not needed", SKIPPED.
    "group_scale": (
        ("NFRAMES", "FRMDIVSR"), _group_scale_not_needed,
        "NFRAMES is a power of 2 (no FRMDIVSR) or equals FRMDIVSR",
    ),
    # charge_migration/charge_migration_step.py:42-45: fewer than 3 groups -> SKIPPED.
    "charge_migration": (("NGROUPS",), _too_few_groups, "NGROUPS <= 2"),
    # jump/jump_step.py:87-92: NGROUPS <= 2 -> SKIPPED.
    "jump": (("NGROUPS",), _too_few_groups, "NGROUPS <= 2"),
    # refpix/reference_pixels.py:1999-2002 (via refpix_step.py:160-161): MIRI subarrays are
    # skipped (is_subarray: data smaller than 1032x1024, i.e. SUBARRAY != FULL).
    "refpix": (("INSTRUME", "SUBARRAY"), _miri_subarray, "MIRI subarray"),
    # gain_scale/gain_scale_step.py:46-61: no GAINFACT in the exposure and none in the gain
    # reference -> SKIPPED. Gain references with GAINFACT exist for NIRSpec (IRS2) only, so
    # NIRSpec is left out (SKIPPED there = not done).
    "gain_scale": (
        ("INSTRUME", "GAINFACT"), _no_gain_factor, "no GAINFACT (not NIRSpec)",
    ),
    # emicorr/emicorr_step.py:60-64: read patterns other than FAST/FASTR1/SLOW/SLOWR1.
    "emicorr": (("READPATT",), _emicorr_not_implemented, "READPATT not FAST/SLOW(R1)"),
}
# Left out on purpose: picture_frame (skips when CRDS has no PICTUREFRAME reference for the
# exposure: a CRDS rule, not visible in the code), steps skipped because a reference is N/A,
# and MIRI firstframe/lastframe/rscd/reset (only skip for non-MIRI detectors, which never
# run them).

# Header keywords the table needs; readers of candidate products should read them too.
APPLICABILITY_KEYWORDS: tuple[str, ...] = tuple(
    dict.fromkeys(k for keys, _, _ in NOT_APPLICABLE.values() for k in keys)
)


def skip_applies(step: str, header: Mapping[str, Any]) -> bool:
    """True when the pipeline records ``step`` SKIPPED for this exposure by design.

    Parameters
    ----------
    step : str
        Step name.
    header : mapping
        Primary-header keyword -> value of the exposure (or of a product of it).

    Returns
    -------
    bool
        True only for the verified cases of :data:`NOT_APPLICABLE`; False when unsure.
    """
    rule = NOT_APPLICABLE.get(step)
    return bool(rule and rule[1](header))


def step_done(step: str, status: str | None, header: Mapping[str, Any]) -> bool:
    """Whether a step counts as done: COMPLETE, or SKIPPED where the step does not apply."""
    if status == "COMPLETE":
        return True
    return status == "SKIPPED" and skip_applies(step, header)


def expected_statuses(step: str, header: Mapping[str, Any]) -> frozenset[str]:
    """S_* values acceptable after the pipeline ran ``step`` on this exposure."""
    if skip_applies(step, header):
        return frozenset({"COMPLETE", "SKIPPED"})
    return frozenset({"COMPLETE"})


def state_problems(header: Mapping[str, Any], steps: Iterable[str], order: Sequence[str], *,
                   exact: Mapping[str, str] | None = None,
                   not_applicable: Iterable[str] = ()) -> list[str]:
    """How a file's S_* keywords differ from the state in which exactly ``steps`` are done.

    A step of the state must be COMPLETE, or SKIPPED where it does not apply to this
    exposure (:func:`expected_statuses`) or its reference was passed as N/A
    (``not_applicable``); every other step of ``order`` must be SKIPPED or absent.
    ``exact`` gives the only accepted value of some steps (e.g. the value a step done
    before a job had in its start file). Returns one message per mismatch ([] = exact).
    """
    exact = exact or {}
    wanted_steps, skippable = set(steps), set(not_applicable)
    problems = []
    for step in order:
        keyword = STEP_KEYWORDS[step]
        value = str(header[keyword]).strip().upper() if keyword in header else None
        if step in exact:
            expected: set[str | None] = {exact[step]}
        elif step in wanted_steps:
            expected = set(expected_statuses(step, header))
            if step in skippable:
                expected.add("SKIPPED")
        else:
            expected = {None, "SKIPPED"}
        if value not in expected:
            wanted = " or ".join(sorted("absent" if e is None else e for e in expected))
            problems.append(f"{keyword} ({step}) is {value or 'absent'}, expected {wanted}")
    return problems


def describe_steps(instrument: str) -> list[dict[str, Any]]:
    """One record per step of ``instrument`` in pipeline order (for ``refsmith steps``).

    Returns
    -------
    list of dict
        Keys ``step``, ``keyword`` (S_*), ``reftypes``, ``required_reftypes``,
        ``skipped_by_default`` and ``skipped_when`` (the not-applicable rule, or '').
    """
    return [
        {
            "step": step,
            "keyword": STEP_KEYWORDS[step],
            "reftypes": list(STEP_REFTYPES.get(step, ())),
            "required_reftypes": sorted(REQUIRED_REFTYPES.get(step, ())),
            "skipped_by_default": step in SKIPPED_BY_DEFAULT,
            "skipped_when": NOT_APPLICABLE[step][2] if step in NOT_APPLICABLE else "",
        }
        for step in step_order(instrument)
    ]

"""calwebb_detector1 steps: order per instrument, S_* keywords, the ``X-`` shorthand.

The order is taken from the installed ``jwst`` when it can be read (see
:func:`step_order`), else from the tested fallback table below (jwst 3.0.0,
``Detector1Pipeline.process``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from refsmith.errors import ConfigError

INSTRUMENTS = ("NIRCAM", "NIRISS", "NIRSPEC", "MIRI", "FGS")

# step name -> primary header keyword recording its status (core schema)
STEP_KEYWORDS: dict[str, str] = {
    "group_scale": "S_GRPSCL",
    "dq_init": "S_DQINIT",
    "emicorr": "S_MIREMI",
    "saturation": "S_SATURA",
    "ipc": "S_IPC",
    "superbias": "S_SUPERB",
    "refpix": "S_REFPIX",
    "firstframe": "S_FRSTFR",
    "lastframe": "S_LASTFR",
    "reset": "S_RESET",
    "linearity": "S_LINEAR",
    "rscd": "S_RSCD",
    "dark_current": "S_DARK",
    "persistence": "S_PERSIS",
    "charge_migration": "S_CHGMIG",
    "jump": "S_JUMP",
    "picture_frame": "S_PCTFRM",
    "clean_flicker_noise": "S_CLNFNS",
    "ramp_fit": "S_RAMP",
    "gain_scale": "S_GANSCL",
}
KEYWORD_STEPS: dict[str, str] = {kw: step for step, kw in STEP_KEYWORDS.items()}

# Names accepted in configs for a step (legacy jwst_reffiles used 'rate' for ramp_fit).
STEP_ALIASES: dict[str, str] = {"rate": "ramp_fit", "rampfit": "ramp_fit", "dark": "dark_current"}

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


def normalize_instrument(instrument: str) -> str:
    """Return the INSTRUME spelling ('NIRCAM', 'MIRI', ...) or raise ConfigError."""
    name = str(instrument).strip().upper()
    if name not in INSTRUMENTS:
        raise ConfigError(
            f"unknown instrument {instrument!r}; expected one of {', '.join(INSTRUMENTS)}"
        )
    return name


def step_order(instrument: str) -> tuple[str, ...]:
    """The calwebb_detector1 steps of ``instrument`` in the order the pipeline runs them."""
    name = normalize_instrument(instrument)
    return FALLBACK_ORDER["MIRI" if name == "MIRI" else "NIR"]


def canonical_step(name: str) -> str:
    """Map a configured step name (case-insensitive, aliases allowed) to its real name."""
    key = name.strip().lower()
    key = STEP_ALIASES.get(key, key)
    if key not in STEP_KEYWORDS:
        raise ConfigError(f"unknown calwebb_detector1 step {name!r}")
    return key


def expand_steps(spec: str | Iterable[str], instrument: str) -> tuple[str, ...]:
    """Expand a step list or the ``X-`` shorthand into steps in pipeline order.

    ``'dq_init-'`` means every step of the instrument's order up to and including
    dq_init. A list may mix names and one shorthand. Raises ConfigError for unknown
    steps or steps the instrument does not have.
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
                wanted.update(order[: order.index(step) + 1])
            else:
                step = canonical_step(part)
                if step not in order:
                    raise ConfigError(f"step {step!r} does not exist for {instrument}")
                wanted.add(step)
    return tuple(s for s in order if s in wanted)


def in_order(steps: Iterable[str], instrument: str | None) -> tuple[str, ...]:
    """Sort step names by ``instrument``'s pipeline order (NIR order when unknown)."""
    try:
        order: Sequence[str] = step_order(instrument) if instrument else FALLBACK_ORDER["NIR"]
    except ConfigError:
        order = FALLBACK_ORDER["NIR"]
    rank = {s: i for i, s in enumerate(order)}
    return tuple(sorted(set(steps), key=lambda s: (rank.get(s, len(rank)), s)))

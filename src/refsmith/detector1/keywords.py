"""What calwebb_detector1 records in a file's primary header, and the names it answers to.

The ``S_*`` keyword of every step (core schema), the step names a config may use (aliases of
jwst_reffiles such as ``rate``), and the INSTRUME values refsmith plans for. Plain data and
two look-ups; no file access.
"""

from __future__ import annotations

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


def normalize_instrument(instrument: str) -> str:
    """Return the INSTRUME spelling ('NIRCAM', 'MIRI', ...) or raise ConfigError."""
    name = str(instrument).strip().upper()
    if name not in INSTRUMENTS:
        raise ConfigError(
            f"unknown instrument {instrument!r}; expected one of {', '.join(INSTRUMENTS)}"
        )
    return name


def canonical_step(name: str) -> str:
    """Map a configured step name (case-insensitive, aliases allowed) to its real name."""
    key = name.strip().lower()
    key = STEP_ALIASES.get(key, key)
    if key not in STEP_KEYWORDS:
        raise ConfigError(f"unknown calwebb_detector1 step {name!r}")
    return key

"""The reference-file types each calwebb_detector1 step asks CRDS for, and which of them a
step needs, or can do without (jwst 3.0.0; each table cites the source lines it was read
from)."""

from __future__ import annotations

from collections.abc import Iterable

# Reference types each step asks CRDS for: the steps' ``reference_file_types`` in jwst 3.0.0
# (jwst/<step>/<step>_step.py). Overrides of a type must go on EVERY step listed here.
STEP_REFTYPES: dict[str, tuple[str, ...]] = {
    "group_scale": (),
    "dq_init": ("mask",),
    "emicorr": ("emicorr",),
    "saturation": ("saturation", "superbias"),
    "ipc": ("ipc",),
    "superbias": ("superbias",),
    "refpix": ("refpix", "sirskernel"),
    "firstframe": (),
    "lastframe": (),
    "reset": ("reset",),
    "linearity": ("linearity",),
    "rscd": ("rscd",),
    "dark_current": ("dark",),
    "persistence": (),
    "charge_migration": (),
    "jump": ("gain", "readnoise"),
    "picture_frame": ("pictureframe",),
    "clean_flicker_noise": ("flat", "pastasoss"),
    "ramp_fit": ("readnoise", "gain"),
    "gain_scale": ("gain",),
}

# Types without which the step fails (jump_step.py:147-149, ramp_fit_step.py:204-205 open
# them unconditionally).
REQUIRED_REFTYPES: dict[str, frozenset[str]] = {
    "jump": frozenset({"gain", "readnoise"}),
    "ramp_fit": frozenset({"gain", "readnoise"}),
}

# Types that may be N/A while the step still does its work: saturation without superbias
# (saturation_step.py:62-63), refpix outside NIRSpec IRS2 (refpix_step.py:81 only asks for
# 'refpix' on IRS2 data; 'sirskernel' N/A falls back to the running median, :121-125),
# clean_flicker_noise (flat / pastasoss only refine its mask). For every other type, N/A
# makes the step record SKIPPED without doing anything (e.g. dq_init_step.py:60-63).
OPTIONAL_REFTYPES: dict[str, frozenset[str]] = {
    "saturation": frozenset({"superbias"}),
    "refpix": frozenset({"refpix", "sirskernel"}),
    "clean_flicker_noise": frozenset({"flat", "pastasoss"}),
}


def reftype_steps(reftype: str, steps: Iterable[str]) -> tuple[str, ...]:
    """The steps among ``steps`` that use ``reftype`` (each needs its own override)."""
    return tuple(s for s in steps if reftype in STEP_REFTYPES.get(s, ()))

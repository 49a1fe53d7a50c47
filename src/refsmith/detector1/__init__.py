"""What refsmith knows of calwebb_detector1, in one place; the rest of refsmith only asks.

``keywords`` (the ``S_*`` keyword of every step, step-name aliases, INSTRUME values),
``steps`` (the order per instrument, the ``X-`` shorthand, when SKIPPED counts as done, a
file's state against a wanted one), ``reftypes`` (reference types per step, required and
optional), ``source`` (the installed jwst's order, read from its source with :mod:`ast`),
``naming`` (product file names, state ids) and ``memory`` (the model of a calibration job's
peak memory). Nothing here imports jwst; only :mod:`refsmith.calibrate` runs it.
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {
    "INSTRUMENTS": "keywords", "KEYWORD_STEPS": "keywords", "STEP_ALIASES": "keywords",
    "STEP_KEYWORDS": "keywords", "canonical_step": "keywords",
    "normalize_instrument": "keywords",
    "APPLICABILITY_KEYWORDS": "steps", "NOT_APPLICABLE": "steps",
    "SKIPPED_BY_DEFAULT": "steps", "describe_steps": "steps", "expand_steps": "steps",
    "in_order": "steps", "state_problems": "steps", "step_done": "steps",
    "step_order": "steps",
    "OPTIONAL_REFTYPES": "reftypes", "REQUIRED_REFTYPES": "reftypes",
    "STEP_REFTYPES": "reftypes", "reftype_steps": "reftypes",
    "exposure_base": "naming", "product_base": "naming", "state_id": "naming",
    "SHAPE_KEYWORDS": "memory", "calibration_memory": "memory", "frame_shape": "memory",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)

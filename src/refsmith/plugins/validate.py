"""Validation of reference files: strict datamodel open, and a pipeline step using them.

``check_datamodel`` opens the file with its datamodel class under strict validation,
runs the reference-file ``validate()`` (required CRDS metadata) and checks the arrays
are finite. ``check_with_pipeline`` runs the calwebb_detector1 step that uses the
reftype on a raw exposure with the file as override (other references the step needs are
replaced by neutral temporary files) and requires the step to record COMPLETE.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from refsmith.plugins.base import REFTYPE_MODELS
from refsmith.plugins.fitsrows import ImageRows

__all__ = ["PIPELINE_CHECKS", "ReferenceFileInvalid", "check_datamodel", "check_with_pipeline"]

# reftype -> (module, step class, cal_step attribute, other reftypes the step needs)
PIPELINE_CHECKS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "mask": ("jwst.dq_init", "DQInitStep", "dq_init", ()),
    "superbias": ("jwst.superbias", "SuperBiasStep", "superbias", ()),
    "dark": ("jwst.dark_current", "DarkCurrentStep", "dark_sub", ()),
    "linearity": ("jwst.linearity", "LinearityStep", "linearity", ()),
    "readnoise": ("jwst.ramp_fitting", "RampFitStep", "ramp_fit", ("gain",)),
    "gain": ("jwst.ramp_fitting", "RampFitStep", "ramp_fit", ("readnoise",)),
}


class ReferenceFileInvalid(Exception):
    """The file failed validation; the message is the reason."""


def check_datamodel(path: str | Path, reftype: str) -> None:
    """Open ``path`` with the datamodel of ``reftype`` (strict) and check it.

    Raises
    ------
    ReferenceFileInvalid
        The file does not open as that model, misses CRDS metadata, has another REFTYPE,
        or has non-finite array values.
    """
    from astropy.io import fits
    from stdatamodels.jwst import datamodels

    class_name = REFTYPE_MODELS.get(reftype.lower())
    model_class = getattr(datamodels, class_name) if class_name else datamodels.open
    try:
        written_as = str(fits.getheader(path, 0).get("DATAMODL", "")).strip()
    except Exception as exc:
        raise ReferenceFileInvalid(f"not a readable FITS file: {exc}") from None
    if class_name and written_as != class_name:
        raise ReferenceFileInvalid(f"does not open as {class_name}: it is a "
                                   f"{written_as or 'file without DATAMODL'}")
    # memory-mapped and unscaled, so that opening reads no array (by name it reads them
    # all into fresh memory: 0.9-5.6 s for a full-frame 20-group dark); the finite check
    # reads SCI and ERR block by block from the file (bounded memory)
    try:
        hdus = fits.open(str(path), memmap=True, do_not_scale_image_data=True)
    except Exception as exc:
        raise ReferenceFileInvalid(f"not a readable FITS file: {exc}") from None
    try:
        try:
            model = model_class(hdus, strict_validation=True)
        except Exception as exc:
            raise ReferenceFileInvalid(
                f"does not open as {class_name or 'a datamodel'} with strict validation: "
                f"{type(exc).__name__}: {exc}") from None
        try:
            _check_model(model, reftype, str(path))
        finally:
            model.close()
    finally:
        hdus.close()


def _check_model(model: Any, reftype: str, path: str) -> None:
    try:
        model.validate()
    except Exception as exc:
        raise ReferenceFileInvalid(f"datamodel validation failed: {exc}") from None
    found = str(model.meta.reftype or "").lower()
    if found != reftype.lower():
        raise ReferenceFileInvalid(f"REFTYPE is {found or 'absent'!r}, expected "
                                   f"{reftype.lower()!r}")
    for name, extension in (("data", "SCI"), ("err", "ERR")):
        if name in model.instance:
            array = getattr(model, name)
            bad = _nonfinite(path, extension) if np.ndim(array) >= 2 else \
                int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            if bad:
                raise ReferenceFileInvalid(f"{name} has {bad} non-finite values")


def _nonfinite(path: str, extension: str) -> int:
    """Non-finite values of an image extension, read 16 MB at a time."""
    image = ImageRows(path, extension)
    if image.dtype.kind != "f":
        return 0
    ny, nx = image.shape[-2:]
    planes = int(np.prod(image.planes, dtype=np.int64))
    step = max(1, (16 << 20) // (planes * nx * image.dtype.itemsize))
    bad = 0
    for start in range(0, ny, step):
        block = image.read(slice(start, start + step))
        bad += int(block.size - np.count_nonzero(np.isfinite(block)))
    return bad


def _companion(reftype: str, reference: Any, directory: Path) -> str:
    """A neutral file of ``reftype`` (value 1) matching ``reference``'s setup."""
    from stdatamodels.jwst import datamodels

    shape = np.asarray(reference.data).shape[-2:]
    model_class = getattr(datamodels, REFTYPE_MODELS[reftype])
    model = model_class(data=np.ones(shape, np.float32))
    model.update(reference)
    model.meta.reftype = reftype.upper()
    model.meta.description = f"neutral {reftype} for validating {reference.meta.filename}"
    target = directory / f"neutral_{reftype}.fits"
    model.save(str(target))
    model.close()
    return str(target)


def check_with_pipeline(path: str | Path, reftype: str, exposure: str | Path) -> None:
    """Run the step that uses ``reftype`` on ``exposure`` with ``path`` as override.

    Raises
    ------
    ReferenceFileInvalid
        The step raised, returned nothing, or did not record COMPLETE.
    KeyError
        No pipeline check is defined for ``reftype`` (see :data:`PIPELINE_CHECKS`).
    """
    from stdatamodels.jwst import datamodels

    module, class_name, attribute, others = PIPELINE_CHECKS[reftype.lower()]
    step_class = getattr(importlib.import_module(module), class_name)
    with tempfile.TemporaryDirectory(prefix="refsmith-validate-") as scratch:
        overrides = {f"override_{reftype.lower()}": str(path)}
        if others:
            with datamodels.open(str(path)) as reference:
                for other in others:
                    overrides[f"override_{other}"] = _companion(other, reference,
                                                                Path(scratch))
        try:
            # configure_log=False: records go to the job log only (no console handler)
            result = step_class.call(str(exposure), configure_log=False, **overrides)
        except (Exception, SystemExit) as exc:
            raise ReferenceFileInvalid(
                f"{class_name} failed with it on {Path(exposure).name}: "
                f"{type(exc).__name__}: {exc}") from None
        model = result[0] if isinstance(result, tuple) else result
        if model is None:
            raise ReferenceFileInvalid(f"{class_name} returned no product")
        try:
            status = getattr(model.meta.cal_step, attribute, None)
            if status != "COMPLETE":
                raise ReferenceFileInvalid(f"{class_name} recorded {status or 'no status'} "
                                           f"with it on {Path(exposure).name}")
        finally:
            model.close()

"""Calibrated products on disk: are they done, where did they come from, are they stale.

A calibration job's outputs count as done only when the files exist with exactly their
target S_* state (:func:`outputs_valid`). Every product gets a provenance sidecar
``<product>.provenance.json`` (jwst version, reference files with their size and
modification time, the configured ``pipeline.references`` values, the job); a product
whose sidecar disagrees with the current installation or configuration is renamed
``<name>.fits.superseded`` so the plan makes it again. Off-line, every reference type a
step needs must be configured (:func:`check_offline_references`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from refsmith.errors import PlanError, RefsmithError
from refsmith.files import atomic_write_text
from refsmith.jobs import CalibrationJob

PROVENANCE_SCHEMA = "refsmith.provenance/1"
SUPERSEDED_SUFFIX = ".superseded"
# Types a step does its work without (N/A off-line when no file is configured); MIRI
# rscd/reset likewise have nothing to do outside MIRI.
_OPTIONAL_WHEN_MISSING = {"rscd": frozenset({"rscd"}), "reset": frozenset({"reset"})}


def installed_jwst_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jwst")
    except PackageNotFoundError:
        return "not installed"


def _header_state(path: Path) -> dict[str, Any] | None:
    from astropy.io import fits

    try:
        return dict(fits.getheader(path, 0))
    except Exception:
        return None


def outputs_valid(job: CalibrationJob) -> bool:
    """Whether every output of ``job`` is on disk with exactly its target ``S_*`` state.

    A step of the state must be COMPLETE, or SKIPPED where the pipeline skips it by design
    for this exposure (:func:`refsmith.steps.expected_statuses`) or where the job passes
    its reference as N/A; every other step must be SKIPPED or absent.
    """
    from refsmith.steps import state_problems, step_order

    not_applicable = {s for s, refs in job.overrides.items()
                      if any(str(v) == "N/A" for v in refs.values())}
    try:
        order = step_order(job.instrument)
    except RefsmithError:
        return False
    for output in job.outputs:
        path = Path(output.path)
        if not path.is_file():
            return False
        if output.kind != "product":
            continue
        header = _header_state(path)
        if header is None or state_problems(header, output.steps, order,
                                            not_applicable=not_applicable):
            return False
    return True


# ---------------------------------------------------------------- provenance


def provenance_path(product: str | Path) -> Path:
    """The provenance sidecar of a calibrated product."""
    path = Path(product)
    stem = re.sub(r"\.fits(\.gz)?$", "", path.name, flags=re.IGNORECASE)
    return path.with_name(stem + ".provenance.json")


def _file_identity(path: str) -> dict[str, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


def provenance(job: CalibrationJob, product: Path, steps: Sequence[str],
                config_references: Mapping[str, str], jwst_version: str) -> dict[str, Any]:
    ran = [s for s in job.steps_to_run if s in steps]
    references = {f"{s}.{rt}": str(v) for s in ran
                  for rt, v in sorted(job.overrides.get(s, {}).items())}
    files = sorted({v for v in references.values() if v != "N/A"})
    from refsmith.steps import STEP_REFTYPES

    reftypes = sorted({rt for s in ran for rt in STEP_REFTYPES.get(s, ())})
    return {
        "schema": PROVENANCE_SCHEMA,
        "product": str(product),
        "exposure": job.exposure,
        "steps": list(steps),
        "start_file": job.start_file,
        "steps_run": ran,
        "job": job.id,
        "jwst": jwst_version,
        "references": references,
        "reference_files": {f: _file_identity(f) for f in files},
        "config_references": {rt: config_references.get(rt, "crds") for rt in reftypes},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def stale_reason(product: Path, config_references: Mapping[str, str],
                  jwst_version: str) -> str:
    """Why a product's sidecar disagrees with now ('' = it agrees, or has no sidecar)."""
    sidecar = provenance_path(product)
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if data.get("jwst") != jwst_version:
        return f"made with jwst {data.get('jwst')}, now {jwst_version}"
    for path, identity in dict(data.get("reference_files", {})).items():
        if _file_identity(path) != identity:
            return f"reference file {path} changed or is gone"
    for reftype, value in dict(data.get("config_references", {})).items():
        if config_references.get(reftype, "crds") != value:
            return (f"pipeline.references.{reftype} is now "
                    f"{config_references.get(reftype, 'crds')!r}, was {value!r}")
    return ""


def supersede(paths: Sequence[Path]) -> list[str]:
    moved = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, path.with_name(path.name + SUPERSEDED_SUFFIX))
            moved.append(str(path))
        sidecar = provenance_path(path)
        with contextlib.suppress(FileNotFoundError):
            os.replace(sidecar, sidecar.with_name(sidecar.name + SUPERSEDED_SUFFIX))
    return moved


def store_products_used(plan: Any, store_dir: Path) -> set[Path]:
    """Calibrated-store products the plan reads (start files, reffile inputs)."""
    produced = {o.path for j in plan.calibration.calibration_jobs for o in j.outputs}
    used = {j.start_file for j in plan.calibration.calibration_jobs}
    used |= {i.path for j in plan.calibration.reffile_jobs for i in j.inputs}
    store = store_dir.resolve()
    return {Path(p) for p in used - produced if Path(p).resolve().is_relative_to(store)}


def store_products_of(plan: Any, store_dir: Path) -> set[Path]:
    """Every product in the calibrated store of the plan's exposures (--force-redo)."""
    from refsmith.naming import product_base

    bases = {re.sub(r"_uncal\.fits(\.gz)?$", "", Path(e.path).name) for e in plan.catalog.exposures}
    found: set[Path] = set()
    for base in bases:
        directory = store_dir / base
        if directory.is_dir():
            found |= {p for p in directory.iterdir() if product_base(p.name) == base}
    return found


# ---------------------------------------------------------------- off-line references


def check_offline_references(jobs: Sequence[CalibrationJob]) -> list[CalibrationJob]:
    """Complete the jobs' overrides for an off-line run, or raise PlanError.

    Off-line, CRDS chooses nothing: every reference type of a step that runs must be a
    configured file. A type the step does its work without (refpix/sirskernel outside
    NIRSpec IRS2, the superbias of saturation, clean_flicker_noise's flat/pastasoss,
    MIRI rscd/reset) is passed as ``N/A``. Any other missing type is an error naming the
    type and the step: required ones (gain/readnoise of jump and ramp_fit) always; the
    others because the step would silently record SKIPPED and do nothing.

    Returns
    -------
    list of CalibrationJob
        The jobs with ``N/A`` added where allowed.
    """
    from refsmith.steps import OPTIONAL_REFTYPES, REQUIRED_REFTYPES, STEP_REFTYPES

    missing: dict[tuple[str, str], list[str]] = {}
    completed = []
    for job in jobs:
        overrides = {s: dict(r) for s, r in job.overrides.items()}
        for step in job.steps_to_run:
            optional = OPTIONAL_REFTYPES.get(step, frozenset()) | _OPTIONAL_WHEN_MISSING.get(
                step, frozenset())
            for reftype in STEP_REFTYPES.get(step, ()):
                if reftype in overrides.get(step, {}):
                    continue
                if reftype in optional and reftype not in REQUIRED_REFTYPES.get(step, ()):
                    overrides.setdefault(step, {})[reftype] = "N/A"
                else:
                    missing.setdefault((reftype, step), []).append(Path(job.exposure).name)
        completed.append(CalibrationJob.from_dict({**job.to_dict(), "overrides": overrides}))
    if missing:
        lines = []
        for (reftype, step), exposures in sorted(missing.items()):
            required = reftype in REQUIRED_REFTYPES.get(step, ())
            kind = "requires" if required else "needs"
            hint = "" if required else f" (or 'N/A' to let {step} be skipped)"
            lines.append(f"step {step} {kind} reference type {reftype}: set "
                         f"pipeline.references.{reftype} to a file or glob{hint}; "
                         f"{len(exposures)} job(s), e.g. {exposures[0]}")
        raise PlanError("off-line mode (no CRDS), missing reference files:\n  "
                        + "\n  ".join(lines))
    return completed



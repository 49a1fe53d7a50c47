"""Calibrated products on disk: are they done, where did they come from, are they stale.

A calibration job's outputs count as done only when the files exist with exactly their
target S_* state (:func:`outputs_valid`). Every product gets a provenance sidecar
``<product>.provenance.json`` (jwst version, reference files with their size and
modification time, the configured ``pipeline.references`` values, the job, and the raw
exposure's identity with its content digest); a product whose sidecar disagrees with the
current installation, configuration or raw file is renamed ``<name>.fits.superseded`` (its
sidecar says why) so the plan makes it again. Jobs check their inputs against the
identities the plan recorded before they run (:func:`input_changes`). Off-line, every
reference type a step needs must be configured (:func:`check_offline_references`).
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
from refsmith.jobs.records import CalibrationJob, ReffileInput
from refsmith.util.files import atomic_write_text
from refsmith.util.identity import IDENTITY_FIELDS, changed, file_identity

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
    for this exposure (:func:`refsmith.detector1.steps.expected_statuses`) or where the job passes
    its reference as N/A; every other step must be SKIPPED or absent.
    """
    from refsmith.detector1.steps import state_problems, step_order

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
    identity = file_identity(path)
    return None if identity is None else {k: identity[k] for k in ("size", "mtime_ns")}


def provenance(job: CalibrationJob, product: Path, steps: Sequence[str],
               config_references: Mapping[str, str], jwst_version: str,
               inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The sidecar of one product; ``inputs``: path -> identity (with its digest) of the
    raw exposure and start file when the job started (what the worker measured)."""
    ran = [s for s in job.steps_to_run if s in steps]
    references = {f"{s}.{rt}": str(v) for s in ran
                  for rt, v in sorted(job.overrides.get(s, {}).items())}
    files = sorted({v for v in references.values() if v != "N/A"})
    from refsmith.detector1.reftypes import STEP_REFTYPES

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
        "inputs": {p: dict(i) for p, i in (inputs or {}).items() if i},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _sidecar(product: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(provenance_path(product).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def input_changes(identities: Mapping[str, Mapping[str, Any]]) -> str:
    """Why one of the files ``identities`` describes is no longer that file ('' if none)."""
    for path, recorded in identities.items():
        reason = changed(path, recorded) if recorded else ""
        if reason:
            return reason
    return ""


def reffile_input_changes(inputs: Sequence[ReffileInput]) -> str:
    """Why an input of a reference-file job is not what the plan saw ('' if none): its
    raw exposure changed since the plan, or its product was made from another version of
    the raw exposure (the product's sidecar says which)."""
    for item in inputs:
        reason = changed(item.exposure, item.identity) if item.identity else ""
        if reason:
            return f"raw exposure {reason}"
        made_from = dict(_sidecar(item.path).get("inputs", {})).get(item.exposure)
        if item.path != item.exposure and made_from and changed(item.exposure, made_from):
            return f"{item.path} was made from an earlier version of {item.exposure}"
    return ""


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def stale_reason(product: Path, config_references: Mapping[str, str],
                  jwst_version: str) -> str:
    """Why a product's sidecar disagrees with now ('' = it agrees, or has no sidecar).

    A raw exposure whose metadata changed but whose content digest is the one recorded
    (copied, restored) still agrees; its sidecar is updated so it is not hashed again.
    """
    data = _sidecar(product)
    if not data:
        return ""
    for path, recorded in dict(data.get("inputs", {})).items():
        reason = changed(path, recorded)
        if reason:
            return f"input {reason} since the product was made"
        now = file_identity(path)
        if now is not None and any(now[f] != recorded.get(f, now[f]) for f in IDENTITY_FIELDS):
            data["inputs"][path] = {**recorded, **now}  # same content: remember the new
            with contextlib.suppress(OSError):
                write_json(provenance_path(product), data)
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


def supersede(reasons: Mapping[Path, str]) -> list[dict[str, str]]:
    """Rename each product (and its sidecar) ``*.superseded``; the sidecar keeps the reason
    (``superseded_because``). Returns ``{"path", "reason"}`` of each product moved."""
    moved = []
    for path, reason in sorted(reasons.items()):
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, path.with_name(path.name + SUPERSEDED_SUFFIX))
            moved.append({"path": str(path), "reason": reason})
        data = _sidecar(path)
        sidecar = provenance_path(path)
        with contextlib.suppress(FileNotFoundError):
            target = sidecar.with_name(sidecar.name + SUPERSEDED_SUFFIX)
            os.replace(sidecar, target)
            with contextlib.suppress(OSError):
                write_json(target, {**data, "superseded_because": reason})
    return moved


def product_notes(directory: Path, config_references: Mapping[str, str]) -> list[str]:
    """What ``refsmith explain`` says of an exposure's calibrated products: the ones set
    aside and why, and the ones the next run will set aside (stale) and why."""
    notes = []
    suffix = ".provenance.json" + SUPERSEDED_SUFFIX
    for sidecar in sorted(directory.glob("*" + suffix)):
        try:
            reason = json.loads(sidecar.read_text(encoding="utf-8")).get("superseded_because")
        except (OSError, ValueError, AttributeError):
            reason = None
        name = sidecar.name[: -len(suffix)] + ".fits"
        notes.append(f"superseded {name}: {reason or 'no reason recorded'}")
    version = installed_jwst_version()
    for sidecar in sorted(directory.glob("*.provenance.json")):
        product = sidecar.with_name(sidecar.name[: -len(".provenance.json")] + ".fits")
        reason = stale_reason(product, config_references, version) if product.is_file() else ""
        if reason:
            notes.append(f"stale {product.name} (the next run makes it again): {reason}")
    return notes


def store_products_used(plan: Any, store_dir: Path) -> set[Path]:
    """Calibrated-store products the plan reads (start files, reffile inputs)."""
    produced = {o.path for j in plan.calibration.calibration_jobs for o in j.outputs}
    used = {j.start_file for j in plan.calibration.calibration_jobs}
    used |= {i.path for j in plan.calibration.reffile_jobs for i in j.inputs}
    store = store_dir.resolve()
    return {Path(p) for p in used - produced if Path(p).resolve().is_relative_to(store)}


def store_products_of(plan: Any, store_dir: Path) -> set[Path]:
    """Every product in the calibrated store of the plan's exposures (--force-redo)."""
    from refsmith.detector1.naming import product_base

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
    from refsmith.detector1.reftypes import OPTIONAL_REFTYPES, REQUIRED_REFTYPES, STEP_REFTYPES

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



"""Start candidates: which file of an exposure calibration should start from.

The candidates of an exposure are its raw file and the products of the same exposure (same
base name, same INSTRUME/DETECTOR) in the search directories and the calibrated store. See
docs/planning.md for the rules.
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refsmith.detector1.keywords import STEP_KEYWORDS
from refsmith.detector1.naming import product_base
from refsmith.detector1.steps import APPLICABILITY_KEYWORDS, NOT_APPLICABLE, step_done, step_order
from refsmith.jobs.records import Rejected, StartChoice
from refsmith.model import Exposure
from refsmith.planning.references import HeaderReader

if TYPE_CHECKING:
    from refsmith.catalog.options import CatalogOptions


# ---------------------------------------------------------------- start candidates


def header_of(exposure: Exposure) -> dict[str, Any]:
    """Header values of an Exposure (keywords read plus the standard attributes)."""
    header = dict(exposure.keywords)
    header.update({"INSTRUME": exposure.instrument, "DETECTOR": exposure.detector,
                   "SUBARRAY": exposure.subarray, "READPATT": exposure.readpatt,
                   "NGROUPS": exposure.ngroups})
    return {k: v for k, v in header.items() if v is not None}


def done_steps(exposure: Exposure, order: Sequence[str]) -> frozenset[str]:
    """Steps that count as done: COMPLETE, or SKIPPED where the step does not apply."""
    header = header_of(exposure)
    status = {s: str(v).strip().upper() for s, v in exposure.step_status.items()}
    for step in exposure.completed_steps:
        status.setdefault(step, "COMPLETE")
    return frozenset(s for s in order if step_done(s, status.get(s), header))


def complete_steps(exposure: Exposure) -> frozenset[str]:
    """Steps whose S_* keyword is COMPLETE."""
    complete = {s for s, v in exposure.step_status.items()
                if str(v).strip().upper() == "COMPLETE"}
    return frozenset(complete | set(exposure.completed_steps))


def evaluate_candidate(candidate: Exposure, raw: Exposure, recipe: str,
                       required: Sequence[str], order: Sequence[str]) -> tuple[str, frozenset]:
    """Why ``candidate`` cannot start ``raw`` toward ``required`` ('' if usable), and its
    done steps among ``required``.

    Usable iff INSTRUME/DETECTOR agree with the raw exposure, its COMPLETE steps are a
    subset of the required state, every done step precedes every required step it lacks,
    and it is not a ramp-fitted (2-D) product with steps still to run.
    """
    if candidate.path != raw.path:
        if not candidate.usable and not candidate.step_status:
            return f"unreadable: {candidate.reason}", frozenset()
        for label, ours, theirs in (("INSTRUME", candidate.instrument, raw.instrument),
                                    ("DETECTOR", candidate.detector, raw.detector)):
            if str(ours or "").upper() != str(theirs or "").upper():
                return f"{label}={ours} differs from the exposure's {theirs}", frozenset()
    wanted = set(required)
    forbidden = [s for s in order if s in complete_steps(candidate) and s not in wanted]
    if forbidden:
        step = forbidden[0]
        keyword = STEP_KEYWORDS[step]
        return (f"{keyword}=COMPLETE but recipe {recipe!r} requires {step} not run",
                frozenset())
    done = done_steps(candidate, order) & wanted
    missing = [s for s in required if s not in done]
    rank = {s: i for i, s in enumerate(order)}
    if missing and done:
        late = [s for s in order if s in done and rank[s] > rank[missing[0]]]
        if late:
            return (f"{late[0]} is done but the earlier {missing[0]} is not (the pipeline "
                    "cannot insert an earlier step later)", frozenset())
    if missing and "ramp_fit" in done:
        return (f"ramp-fitted product cannot be resumed; {', '.join(missing)} still needed",
                frozenset())
    if candidate.path != raw.path and not done:
        return "no required step done (the raw file is equivalent)", frozenset()
    return "", frozenset(done)


def choose_start(raw: Exposure, products: Sequence[Exposure], recipe: str,
                 required: Sequence[str]) -> StartChoice:
    """The usable candidate with the most steps done (ties: by path), and the rejects."""
    if not products and not raw.step_status and not raw.completed_steps:
        return StartChoice(recipe, raw.path, tuple(required), raw.path, (), tuple(required))
    order = step_order(raw.instrument or "")
    usable: list[tuple[int, str, frozenset[str]]] = []
    rejected: list[Rejected] = []
    raw_reason = ""
    for candidate in (raw, *sorted(products, key=lambda e: e.path)):
        reason, done = evaluate_candidate(candidate, raw, recipe, required, order)
        if reason:
            rejected.append(Rejected(candidate.path, reason))
            if candidate.path == raw.path:
                raw_reason = reason
        else:
            usable.append((-len(done), candidate.path, done))
    if not usable:
        return StartChoice(recipe, raw.path, tuple(required), "", (), (), tuple(rejected),
                           excluded=raw_reason or "no usable start file")
    usable.sort(key=lambda u: (u[0], u[1]))
    _, path, done = usable[0]
    rejected += [Rejected(p, f"fewer steps done ({len(d)} < {len(done)})")
                 for _, p, d in usable[1:]]
    return StartChoice(
        recipe, raw.path, tuple(required), path,
        tuple(s for s in order if s in done),
        tuple(s for s in required if s not in done), tuple(rejected),
    )


def find_products(dirs: Iterable[Path], bases: set[str], exclude: set[str]
                  ) -> dict[str, list[str]]:
    """Product files under ``dirs`` (recursively) whose exposure base is in ``bases``."""
    found: dict[str, set[str]] = defaultdict(set)
    for directory in dirs:
        if not Path(directory).is_dir():
            continue
        for root, _, files in os.walk(directory):
            for name in files:
                base = product_base(name)
                if base in bases:
                    path = str(Path(root, name).resolve())
                    if path not in exclude:
                        found[base].add(path)
    return {base: sorted(paths) for base, paths in found.items()}


def default_header_reader(catalog_options: CatalogOptions | None = None) -> HeaderReader:
    """Read primary headers with the catalog (fast reader + cache) for any ``.fits`` name.

    INSTRUME and DETECTOR are the only required keywords; SUBARRAY, READPATT, NGROUPS and
    the keywords of the not-applicable table are read too.
    """
    from refsmith.catalog.catalog import scan
    from refsmith.catalog.options import CatalogOptions

    base = catalog_options or CatalogOptions()
    extra = ("SUBARRAY", "READPATT", "NGROUPS", *APPLICABILITY_KEYWORDS)
    catalog_options = dataclasses.replace(
        base, pattern=r"\.fits(\.gz)?$", required_keywords=("INSTRUME", "DETECTOR"),
        optional_keywords=tuple(dict.fromkeys((*base.optional_keywords, *extra))),
    )

    def read(paths: Sequence[str]) -> Sequence[Exposure]:
        return scan(list(paths), catalog_options).exposures if paths else []

    return read



def needs_reread(exposure: Exposure) -> bool:
    """A SKIPPED step whose applicability keywords were not read with the exposure."""
    if not exposure.step_status:
        return False
    header = header_of(exposure)
    return any(
        str(status).strip().upper() == "SKIPPED" and step in NOT_APPLICABLE
        and not all(k in header or k in exposure.keywords
                    for k in NOT_APPLICABLE[step][0])
        for step, status in exposure.step_status.items()
    )



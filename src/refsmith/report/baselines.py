"""Which file each final reference file is compared with.

In order: the file the config gives for its reference type or recipe
(``report.baselines``, a path or glob matched on DETECTOR and SUBARRAY), then the file
CRDS selected for this setup (only for runs that were not off-line: the one a calibrated
input records it was given, ``R_DARK = crds://...``, read from the local CRDS cache; the
report never waits on a network), then the same final file of the previous run directory
under the same output root. Each step that gives nothing says why (``notes``).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refsmith.report.rundata import RunData

__all__ = ["Baseline", "BaselineFinder"]

FULL_FRAME = frozenset({"FULL", "GENERIC", ""})
REF_KEYWORDS = {"dark": "R_DARK", "gain": "R_GAIN", "mask": "R_MASK", "readnoise": "R_READNO",
                "superbias": "R_SUPERB", "linearity": "R_LINEAR", "saturation": "R_SATURA",
                "ipc": "R_IPC"}
"""The primary-header keyword in which a calibrated product names the reference of a type."""
ANY_DETECTOR = frozenset({"ANY", "MULTIPLE", "N/A"})


@dataclass
class Baseline:
    """The chosen baseline (``path`` None when there is none) and how it was found."""

    path: Path | None
    source: str = ""
    notes: list[str] = field(default_factory=list)


def _norm(value: Any) -> str:
    return "" if value is None else str(value).strip().upper()


def _rank(candidate: Path, header: Mapping[str, Any]) -> int | None:
    """0 same DETECTOR and SUBARRAY, 1 a full frame of the same detector, None else."""
    from astropy.io import fits

    try:
        other = fits.getheader(candidate)
    except (OSError, ValueError):
        return None
    detector = _norm(other.get("DETECTOR"))
    if detector not in ANY_DETECTOR and detector != _norm(header.get("DETECTOR")):
        return None
    subarray = _norm(other.get("SUBARRAY"))
    if subarray == _norm(header.get("SUBARRAY")):
        return 0
    return 1 if subarray in FULL_FRAME else None


class BaselineFinder:
    """Finds baselines for the final files of one run (the config read once)."""

    def __init__(self, run: RunData) -> None:
        self.run = run
        self.config_notes: list[str] = []
        self.baselines: dict[str, str] = {}
        self.sigma = 5.0
        recorded = run.store.run.get("offline") if run.store else None
        self.offline = None if recorded is None else bool(recorded)
        self.base_dir = run.run_dir
        self._load_config(run.plan.get("config"))

    def _load_config(self, source: Any) -> None:
        if not source or not Path(str(source)).is_file():
            self.config_notes.append("the run's config file is not at hand: no configured "
                                     "baselines")
            return
        from refsmith.config.loading import load_config
        from refsmith.errors import RefsmithError

        try:
            config = load_config(source)
        except RefsmithError as error:
            self.config_notes.append(f"the config cannot be read ({error}): no configured "
                                     "baselines")
            return
        self.baselines = dict(config.report.baselines)
        self.sigma = float(config.report.sigma)
        self.base_dir = Path(config.base_dir)
        if self.offline is None:
            self.offline = bool(config.pipeline.offline)

    def find(self, path: Path, recipe: str, header: Mapping[str, Any]) -> Baseline:
        """The baseline of final file ``path`` (its primary ``header`` values)."""
        result = Baseline(None)
        reftype = str(header.get("REFTYPE", "")).strip().lower()
        given = self.baselines.get(reftype) or self.baselines.get(recipe)
        if given:
            found = self._configured(given, path, header)
            if found is not None:
                result.path, result.source = found, "config"
                return result
            result.notes.append(f"report.baselines {given!r}: no file of this DETECTOR and "
                                "SUBARRAY")
        else:
            result.notes.append(f"no report.baselines entry for {reftype or recipe}")
        if self.offline:
            result.notes.append("CRDS not asked: the run was off-line")
        else:
            found, note = self._crds(path, reftype, header)
            if found is not None:
                result.path, result.source = found, "CRDS, as the pipeline chose it"
                return result
            result.notes.append(note)
        previous = self._previous(path, recipe)
        if previous is not None:
            result.path, result.source = previous, f"previous run {previous.parents[2].name}"
        else:
            result.notes.append("no earlier run directory holds this final file")
        return result

    def _crds(self, path: Path, reftype: str, header: Mapping[str, Any]
              ) -> tuple[Path | None, str]:
        """The reference CRDS gave the pipeline for this setup, as recorded in a calibrated
        input (``R_*``, ``crds://name``), when it is in the local CRDS cache. The report
        never downloads: the cache is read, so the time is bounded."""
        keyword = REF_KEYWORDS.get(reftype)
        if keyword is None:
            return None, f"CRDS: no {reftype or 'reference'} type the pipeline records"
        used = ""
        for product in self._calibrated_inputs(path):
            try:
                from astropy.io import fits

                used = str(fits.getheader(product).get(keyword, "") or "")
            except (OSError, ValueError):
                continue
            break
        if not used.startswith("crds://"):
            return None, (f"CRDS: the pipeline used no CRDS {reftype} file on these inputs"
                          + (f" ({keyword} = {used})" if used else ""))
        name = used.removeprefix("crds://")
        cache = Path(os.environ.get("CRDS_PATH") or Path.home() / "crds_cache")
        instrument = str(header.get("INSTRUME", "")).strip().lower()
        for candidate in (cache / "references" / "jwst" / instrument / name,
                          cache / "references" / "jwst" / name):
            if candidate.is_file():
                return candidate, ""
        return None, (f"CRDS chose {name}, which is not in the CRDS cache {cache} (the "
                      "report does not download)")

    def _calibrated_inputs(self, path: Path) -> list[str]:
        """Calibrated products the final file was made from (through the plan)."""
        plan = self.run.plan
        individual = next((j.get("inputs", []) for j in plan.get("combine_jobs", [])
                           if Path(j.get("output", "")) == path), [])
        outputs = set(individual)
        return [item["path"] for job in plan.get("reffile_jobs", [])
                if job.get("output") in outputs for item in job.get("inputs", [])
                if item.get("path")]

    def _configured(self, given: str, path: Path, header: Mapping[str, Any]) -> Path | None:
        text = os.path.expandvars(os.path.expanduser(given))
        pattern = text if os.path.isabs(text) else str(self.base_dir / text)
        ranked = []
        for name in sorted(glob.glob(pattern)):
            candidate = Path(name).resolve()
            if candidate == path.resolve() or not candidate.is_file():
                continue
            rank = _rank(candidate, header)
            if rank is not None:
                ranked.append((rank, str(candidate)))
        return Path(min(ranked)[1]) if ranked else None

    def _previous(self, path: Path, recipe: str) -> Path | None:
        """The same file in the newest other run directory of the output root whose copy is
        older than this one."""
        root = self.run.run_dir.parent
        try:
            mtime = path.stat().st_mtime
            siblings = [d for d in root.iterdir() if d.is_dir() and d != self.run.run_dir]
        except OSError:
            return None
        found = []
        for directory in siblings:
            candidate = directory / "final" / recipe / path.name
            try:
                other = candidate.stat().st_mtime
            except OSError:
                continue
            if other < mtime:
                found.append((other, candidate))
        return max(found)[1] if found else None

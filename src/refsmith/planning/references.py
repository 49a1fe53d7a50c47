"""Reference files for calibration jobs (``pipeline.references``).

Per reference type the config gives one of

- ``crds`` (the default): no override, the pipeline asks CRDS;
- ``N/A``: the override ``N/A`` (the step runs without that type where it can);
- a file path or a glob: the file whose primary header matches the exposure: same
  DETECTOR (``ANY``/``MULTIPLE`` match all), same SUBARRAY or a full-frame reference (the
  pipeline cuts subarrays out of full-frame references, except ``dark``, which must match
  exactly); an exact subarray match beats a full frame;
- ``self``: this run's own final reference of that type (the output of the combine job of
  the recipe that makes it, for the exposure's partition).
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refsmith.errors import PlanError
from refsmith.model import Exposure

HeaderReader = Callable[[Sequence[str]], Sequence[Exposure]]
SelfLookup = Callable[[str, Exposure], tuple[str, str]]

WILDCARD_DETECTORS = frozenset({"ANY", "MULTIPLE", "N/A"})
FULL_FRAME = frozenset({"FULL", "GENERIC", ""})
EXACT_SUBARRAY_TYPES = frozenset({"dark"})


@dataclass(frozen=True)
class Resolved:
    """How one reference type is given to the pipeline for one exposure.

    ``path`` None means no override (CRDS); ``depends_on`` is the id of the job that
    makes the file (for ``self``), else ''.
    """

    path: str | None
    depends_on: str = ""


def _norm(value: object) -> str:
    return "" if value is None else str(value).strip().upper()


def match_rank(reftype: str, reference: Exposure, exposure: Exposure) -> int | None:
    """0 for an exact DETECTOR/SUBARRAY match, 1 for a usable full frame, None otherwise."""
    if reference.instrument and exposure.instrument and (
        _norm(reference.instrument) != _norm(exposure.instrument)
    ):
        return None
    detector = _norm(reference.detector)
    if detector not in WILDCARD_DETECTORS and detector != _norm(exposure.detector):
        return None
    subarray = _norm(reference.subarray)
    if subarray == _norm(exposure.subarray):
        return 0
    if subarray in FULL_FRAME and reftype not in EXACT_SUBARRAY_TYPES:
        return 1
    return None


@dataclass
class ReferenceResolver:
    """Resolve ``pipeline.references`` per (reftype, exposure), with caching.

    Parameters
    ----------
    references : mapping
        Reference type -> ``crds`` / ``N/A`` / path / glob / ``self``.
    read_headers : callable
        Reads primary headers of reference files into Exposure records.
    self_lookup : callable
        ``(reftype, exposure) -> (path, job id)`` of this run's own final reference;
        raises PlanError when there is none.
    """

    references: Mapping[str, str]
    read_headers: HeaderReader
    self_lookup: SelfLookup
    _files: dict[str, list[Exposure]] = field(default_factory=dict)
    _cache: dict[tuple[str, str, str, str], Resolved] = field(default_factory=dict)

    def resolve(self, reftype: str, exposure: Exposure) -> Resolved:
        """The override of ``reftype`` for ``exposure``.

        Raises
        ------
        PlanError
            When no file (or more than one equally good file) matches, naming the
            reftype, the exposure and what was looked for.
        """
        value = str(self.references.get(reftype, "crds")).strip()
        if value.lower() == "crds":
            return Resolved(None)
        if value.upper() == "N/A":
            return Resolved("N/A")
        if value.lower() == "self":
            path, job = self.self_lookup(reftype, exposure)
            return Resolved(path, job)
        key = (reftype, _norm(exposure.instrument), _norm(exposure.detector),
               _norm(exposure.subarray))
        if key not in self._cache:
            self._cache[key] = Resolved(self._match(reftype, value, exposure))
        return self._cache[key]

    def _candidates(self, reftype: str, value: str) -> list[Exposure]:
        if reftype not in self._files:
            pattern = str(Path(value).expanduser())
            paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else (
                [pattern] if Path(pattern).is_file() else [])
            paths = [str(Path(p).resolve()) for p in paths]
            self._files[reftype] = sorted(self.read_headers(paths), key=lambda e: e.path)
        return self._files[reftype]

    def _match(self, reftype: str, value: str, exposure: Exposure) -> str:
        candidates = self._candidates(reftype, value)
        wanted = (f"DETECTOR={exposure.detector}, SUBARRAY={exposure.subarray}"
                  + ("" if reftype in EXACT_SUBARRAY_TYPES else " (or FULL)"))
        if not candidates:
            raise PlanError(
                f"reference type {reftype!r} for {exposure.path}: no file matches "
                f"{value!r}; fix pipeline.references.{reftype}"
            )
        ranked = sorted(
            (rank, ref.path) for ref in candidates
            if (rank := match_rank(reftype, ref, exposure)) is not None
        )
        if not ranked:
            raise PlanError(
                f"reference type {reftype!r} for {exposure.path}: none of the "
                f"{len(candidates)} file(s) given by {value!r} has {wanted}"
            )
        best = [path for rank, path in ranked if rank == ranked[0][0]]
        if len(best) > 1:
            raise PlanError(
                f"reference type {reftype!r} for {exposure.path}: {len(best)} files given "
                f"by {value!r} match {wanted} equally well ({', '.join(best[:3])}); "
                "make the pattern select one per detector/subarray"
            )
        return best[0]

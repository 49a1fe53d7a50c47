"""The catalog: discover input files and describe each one from its primary header.

``scan`` = ``discover`` (files, directories, globs, ``@list`` files; duplicates removed)
+ header reading (:mod:`refsmith.catalog.headers`, cached in SQLite by path + size + mtime,
in parallel when many files are new) + one :class:`~refsmith.model.Exposure` per file
(:mod:`refsmith.catalog.exposure`) with its image type, time, setup, completed steps, or the
reason it is unusable.

Nothing here imports astropy at import time; astropy is used only by
:meth:`Catalog.to_table` and by the header reader's fallback.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refsmith.catalog.cache import HeaderCache
from refsmith.catalog.discovery import Discovery, discover
from refsmith.catalog.exposure import Describer, upper_keywords
from refsmith.catalog.headers import read_many
from refsmith.catalog.options import CatalogOptions
from refsmith.catalog.pool import read_headers
from refsmith.detector1.steps import APPLICABILITY_KEYWORDS
from refsmith.model import Exposure
from refsmith.util.gc_pause import gc_paused

if TYPE_CHECKING:
    from astropy.table import Table

# Read headers in several processes when at least this many files are not cached.
PARALLEL_MIN_FILES = 1000


def read_exposure(path: str, options: CatalogOptions) -> Exposure:
    """Describe one file from its primary header (no cache, no discovery).

    Never raises for a bad file: it comes back with ``usable=False`` and a reason. The file
    is known by its real path and classified by the name given (a symlink's own name).
    """
    plan = Describer(options)
    real = os.path.realpath(path)
    name = os.path.basename(path)
    try:
        info = os.stat(real)
    except OSError as exc:
        return Exposure(real, False, f"cannot read: {exc.strerror or exc}")
    if not stat.S_ISREG(info.st_mode):
        reason = "is a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        return Exposure(real, False, reason, size=info.st_size, mtime_ns=info.st_mtime_ns,
                        ctime_ns=info.st_ctime_ns, inode=info.st_ino)
    ((_, values, error, _),) = read_many([real], plan.keywords)
    return plan.exposure(real, info, values, error,
                         None if real.endswith("/" + name) else name)


@dataclass
class Catalog:
    """Every discovered file as an Exposure (sorted by path), and how they were read."""

    exposures: list[Exposure]
    discovery: Discovery
    cache_hits: int = 0
    read: int = 0
    # Configured required/optional keywords, shown as extra columns by to_table().
    columns: tuple[str, ...] = ()

    def usable(self) -> list[Exposure]:
        """The exposures that can take part in groups."""
        return [e for e in self.exposures if e.usable]

    def by_path(self) -> dict[str, Exposure]:
        """Path -> Exposure."""
        return {e.path: e for e in self.exposures}

    def counts(self) -> dict[str, int]:
        """Usable exposures per image type, then 'unclassified' and 'unusable'."""
        counts: dict[str, int] = {}
        unclassified = unusable = 0
        for exposure in self.exposures:
            if not exposure.usable:
                unusable += 1
            elif exposure.imtype is None:
                unclassified += 1
            else:
                counts[exposure.imtype] = counts.get(exposure.imtype, 0) + 1
        return {**dict(sorted(counts.items())), "unclassified": unclassified,
                "unusable": unusable}

    def summary_line(self) -> str:
        """E.g. ``'120 usable: 60 darks, 50 flats, 10 unclassified; 3 unusable'``."""
        counts = self.counts()
        unusable = counts.pop("unusable")
        parts = [f"{n} {_plural(name) if name != 'unclassified' else name}"
                 for name, n in counts.items() if n or name == "unclassified"]
        usable = sum(counts.values())
        return f"{usable} usable: {', '.join(parts)}; {unusable} unusable"

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-ready records, one per exposure."""
        return [
            {
                "path": e.path, "usable": e.usable, "reason": e.reason, "imtype": e.imtype,
                "instrument": e.instrument, "detector": e.detector, "exp_type": e.exp_type,
                "readpatt": e.readpatt, "subarray": e.subarray, "ngroups": e.ngroups,
                "nints": e.nints, "mjd": e.mjd, "completed_steps": list(e.completed_steps),
                "step_status": dict(e.step_status), "keywords": dict(e.keywords),
            }
            for e in self.exposures
        ]

    def table_columns(self) -> list[tuple[str, str, list[Any]]]:
        """The catalog table as ``(name, ECSV datatype, values)`` columns.

        One row per exposure; lists are comma-separated; None is a missing value
        (an empty string in a string column). Used by :meth:`to_table` and by the run
        directory's ``catalog.ecsv`` (:mod:`refsmith.util.ecsv`).
        """
        exposures = self.exposures
        columns: list[tuple[str, str, list[Any]]] = []
        for name in ("path", "usable", "reason", "imtype", "instrument", "detector",
                     "exp_type", "readpatt", "subarray", "ngroups", "nints", "mjd"):
            datatype = _CATALOG_DATATYPES.get(name, "string")
            values = [getattr(e, name) for e in exposures]
            if datatype == "string":
                values = [_cell(v) for v in values]
            columns.append((name, datatype, values))
        columns.append(("completed_steps", "string",
                        [",".join(e.completed_steps) for e in exposures]))
        columns.append(("step_status", "string", [
            ",".join(f"{k}={v}" for k, v in e.step_status.items()) for e in exposures
        ]))
        standard = {"INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT", "SUBARRAY", "NGROUPS",
                    "NINTS"}
        taken = {name for name, _, _ in columns}
        for keyword in self.columns:
            if keyword not in standard and keyword not in taken:
                taken.add(keyword)
                columns.append((keyword, "string",
                                [_cell(e.keywords.get(keyword)) for e in exposures]))
        return columns

    def to_table(self) -> Table:
        """An astropy Table (for ECSV): one row per exposure, lists comma-separated."""
        from astropy.table import MaskedColumn, Table

        table = Table()
        for name, datatype, values in self.table_columns():
            if datatype in ("int64", "float64"):
                kind = float if datatype == "float64" else int
                table[name] = MaskedColumn(
                    [kind(0) if v is None else v for v in values],
                    mask=[v is None for v in values], dtype=kind,
                )
            else:
                table[name] = values
        return table


_CATALOG_DATATYPES = {"usable": "bool", "ngroups": "int64", "nints": "int64",
                      "mjd": "float64"}


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _plural(name: str) -> str:
    return name + ("es" if name.endswith(("s", "x", "ch", "sh")) else "s")


def scan(
    inputs: Sequence[str],
    options: CatalogOptions,
    base_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Catalog:
    """Catalog the files named by ``inputs`` (see :func:`discover`).

    Headers come from the SQLite cache ``options.cache`` when the file's size and
    mtime are unchanged and the cached row has every keyword needed now; the rest are
    read (in ``options.workers`` reader processes when there are many) and cached.
    Classification, time and usability are always recomputed from the header values.

    Parameters
    ----------
    inputs : sequence of str
        Files, directories, globs and ``@list`` files.
    options : CatalogOptions
        Pattern, keywords, time, image-type rules, cache, workers.
    base_dir : Path, optional
        What relative inputs are relative to (default: the current directory).
    progress : callable, optional
        Called as ``progress(done, total)`` while reading.

    Returns
    -------
    Catalog
        One Exposure per discovered file, sorted by path; bad files are unusable with a
        reason, never an exception.
    """
    with gc_paused():  # ~10^5 acyclic objects are made: collections would only slow it
        return _scan(inputs, options, base_dir, progress)


def _scan(
    inputs: Sequence[str],
    options: CatalogOptions,
    base_dir: Path | None,
    progress: Callable[[int, int], None] | None,
) -> Catalog:
    discovery = discover(inputs, options.pattern, base_dir)
    plan = Describer(options)
    total = len(discovery.paths)
    stats = discovery.stats
    results: dict[str, tuple[dict[str, Any] | None, str]] = {}
    cache = HeaderCache.open(options.cache) if options.cache is not None else None
    try:
        if cache is not None:
            results = cache.lookup(stats, plan.keywords, plan.key, plan.covered_by)
            cache.prune(discovery.walked, stats)
        hits = len(results)
        todo = []
        for path in discovery.paths:
            if path in results:
                continue
            if stat.S_ISREG(stats[path].st_mode):
                todo.append(path)
            else:  # e.g. a FIFO named explicitly: opening it could block
                results[path] = (None, "not a regular file")
        if progress:
            progress(len(results), total)
        fresh = read_headers(
            todo, plan.keywords, _worker_count(options.workers, len(todo)), progress,
            len(results), total,
        )
        for path, values, error, _ in fresh:
            results[path] = (values, error)
        if cache is not None and fresh:
            cache.store(
                (p, stats[p], plan.key, e, v)
                for p, v, e, ok in fresh
                if ok
            )
    finally:
        if cache is not None:
            cache.close()
    build = plan.exposure
    names = discovery.names  # a symlink's name: what the file is classified by
    exposures = [
        build(path, info, *results[path], names.get(path))
        for path, info in stats.items()
    ] if names else [
        build(path, info, *results[path])
        for path, info in stats.items()
    ]
    columns = tuple(dict.fromkeys(
        (*plan.required, *upper_keywords(options.optional_keywords))
    ))
    return Catalog(exposures, discovery, hits, len(todo), columns)


def _worker_count(workers: int | None, files: int) -> int:
    """Reading processes for ``files`` uncached files: 1 when few, else ``workers`` or
    the CPUs available (at most 8)."""
    if files < PARALLEL_MIN_FILES:
        return 1
    if workers is not None:
        return max(1, workers)
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return min(available, 8)


def header_reader(options: CatalogOptions | None = None
                  ) -> Callable[[Sequence[str]], list[Exposure]]:
    """A reader of the primary headers of any ``.fits`` files (calibrated products,
    reference files): :func:`scan` with ``options``' cache and time keywords.

    INSTRUME and DETECTOR are the only required keywords; SUBARRAY, READPATT, NGROUPS and
    the keywords of the not-applicable table are read too. The planner is handed this
    reader (``PlanningOptions.read_headers``).
    """
    base = options or CatalogOptions()
    extra = ("SUBARRAY", "READPATT", "NGROUPS", *APPLICABILITY_KEYWORDS)
    reader_options = dataclasses.replace(
        base, pattern=r"\.fits(\.gz)?$", required_keywords=("INSTRUME", "DETECTOR"),
        optional_keywords=tuple(dict.fromkeys((*base.optional_keywords, *extra))),
    )

    def read(paths: Sequence[str]) -> list[Exposure]:
        return scan(list(paths), reader_options).exposures if paths else []

    return read

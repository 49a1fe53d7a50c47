"""The catalog: discover input files and describe each one from its primary header.

``scan`` = ``discover`` (files, directories, globs, ``@list`` files; duplicates removed)
+ header reading (:mod:`refsmith.headers`, cached in SQLite by path + size + mtime,
in parallel when many files are new) + one :class:`~refsmith.model.Exposure` per file
with its image type, time, setup, completed steps, or the reason it is unusable.

Nothing here imports astropy at import time (the reader processes import this package);
astropy is used only by :meth:`Catalog.to_table` and by the header reader's fallback.
"""

from __future__ import annotations

import gc
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refsmith.classify import DEFAULT_RULES, Classifier, TypeRule
from refsmith.discovery import Discovery, discover
from refsmith.errors import ConfigError
from refsmith.headercache import HeaderCache
from refsmith.headers import STEP_PREFIX, iso_to_mjd, read_headers, read_many
from refsmith.model import Exposure
from refsmith.steps import KEYWORD_STEPS, in_order

if TYPE_CHECKING:
    from astropy.table import Table

# Read headers in several processes when at least this many files are not cached.
PARALLEL_MIN_FILES = 1000
STANDARD_READ = ("INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT", "SUBARRAY", "NGROUPS", "NINTS")


@dataclass(frozen=True)
class TimeSpec:
    """Where the observation time is in the header.

    ``mjd``: a keyword holding an MJD number (default EXPSTART). ``date``: a keyword with
    a full ISO datetime (DATE-END ``'2022-06-01T12:00:00.000'``), or, with ``time``, a
    date + time pair (DATE-OBS + TIME-OBS; ground-test DATE-END + TIME-END). When
    ``date`` is set it is used and ``mjd`` is ignored. Times are UTC.
    """

    mjd: str | None = "EXPSTART"
    date: str | None = None
    time: str | None = None

    def __post_init__(self) -> None:
        if self.time and not self.date:
            raise ConfigError(f"time keyword {self.time!r} needs a date keyword too")

    def keywords(self) -> tuple[str, ...]:
        """The header keywords this spec reads (upper case)."""
        if self.date:
            return tuple(k.strip().upper() for k in (self.date, self.time) if k)
        return (self.mjd.strip().upper(),) if self.mjd else ()


@dataclass(frozen=True)
class CatalogOptions:
    """What to catalog and how (see :func:`scan`)."""

    pattern: str | None = r"_uncal\.fits$"
    required_keywords: tuple[str, ...] = (
        "INSTRUME", "DETECTOR", "READPATT", "SUBARRAY", "NGROUPS", "NINTS",
    )
    optional_keywords: tuple[str, ...] = ()
    time: TimeSpec = TimeSpec()
    type_rules: tuple[TypeRule, ...] = DEFAULT_RULES
    cache: Path | None = None
    workers: int | None = None


class _Plan:
    """Options compiled once per scan: which keywords to read, how to decide."""

    def __init__(self, options: CatalogOptions) -> None:
        self.required = tuple(_upper(options.required_keywords))
        self.time = options.time
        self.time_keywords = options.time.keywords()
        self.classifier = Classifier(options.type_rules)
        wanted = {*STANDARD_READ, *self.required, *_upper(options.optional_keywords)}
        wanted.update(self.time_keywords, self.classifier.keywords)
        self.keywords = tuple(sorted(wanted))
        # What a cache row records as looked for (S_* cards are always read in full).
        self.key = ",".join((*self.keywords, STEP_PREFIX + "*"))
        self._covers: dict[str, bool] = {self.key: True}
        # Memos: most files of a scan share their set-up and their set of keywords.
        self.setup_keywords = tuple(
            sorted({*STANDARD_READ, *self.required, *self.classifier.keywords})
        )
        self._setups: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._step_keys: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}

    def covered_by(self, key: str) -> bool:
        """Whether a cache row that looked for ``key`` has every keyword needed now."""
        try:
            return self._covers[key]
        except KeyError:
            result = self._covers[key] = set(self.keywords) <= set(key.split(","))
            return result

    def exposure(
        self, path: str, size: int, mtime_ns: int, values: dict[str, Any] | None, error: str
    ) -> Exposure:
        """Build the Exposure of one file from its header values (or its read error).

        Unusable exposures (missing keyword, bad value, bad time) get ``imtype`` None.
        """
        if values is None:
            return Exposure(path, False, error, size=size, mtime_ns=mtime_ns)
        get = values.get
        key = tuple(map(get, self.setup_keywords))
        memo_key = (key, tuple(map(type, key)))  # types too: True == 1, 5.0 == 5
        setup = self._setups.get(memo_key)
        if setup is None:
            setup = self._setup(values, path)
            if len(self._setups) < 20_000 and not self.classifier.uses_filename:
                self._setups[memo_key] = setup
        reasons, instrument, detector, exp_type, readpatt, subarray, ngroups, nints, imtype = setup
        mjd = get(self.time_keywords[0]) if self.time_keywords else None
        if type(mjd) is not float or self.time.date:
            reasons = list(reasons)
            mjd = self._mjd(values, reasons)
        if self.classifier.uses_filename and not reasons:
            imtype = self.classifier(values, path)
        names = tuple(values)
        step_keys = self._step_keys.get(names)
        if step_keys is None:
            step_keys = tuple((k, KEYWORD_STEPS[k]) for k in names if k in KEYWORD_STEPS)
            if len(self._step_keys) < 1000:
                self._step_keys[names] = step_keys
        status: dict[str, str] = {}
        done: tuple[str, ...] = ()
        if step_keys:
            status = {step: str(values[k]).strip() for k, step in step_keys}
            done = in_order(
                [s for s, v in status.items() if v.upper() == "COMPLETE"], instrument
            )
        return Exposure(
            path, not reasons, "; ".join(reasons), None if reasons else imtype, instrument,
            detector, exp_type, readpatt, subarray, ngroups, nints, mjd, done, status, values,
            size, mtime_ns,
        )

    def _setup(self, values: Mapping[str, Any], path: str) -> tuple[Any, ...]:
        """Everything of an Exposure that depends only on the set-up keywords."""
        reasons = [f"missing {k}" for k in self.required if values.get(k) is None]
        ngroups = _integer(values, "NGROUPS", reasons)
        nints = _integer(values, "NINTS", reasons)
        imtype = None if self.classifier.uses_filename else self.classifier(values, path)
        return (
            tuple(reasons),
            *(_text(values.get(k)) for k in ("INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT",
                                            "SUBARRAY")),
            ngroups,
            nints,
            imtype,
        )

    def _mjd(self, values: Mapping[str, Any], reasons: list[str]) -> float | None:
        if not self.time_keywords:
            return None
        first = self.time_keywords[0]
        value = values.get(first)
        if value is None:
            reasons.append(f"missing {first} (time)")
            return None
        if not self.time.date:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            try:
                return float(str(value))
            except ValueError:
                reasons.append(f"{first} = {value!r} is not a number")
                return None
        clock = None
        if len(self.time_keywords) > 1:
            clock = values.get(self.time_keywords[1])
            if clock is None:
                reasons.append(f"missing {self.time_keywords[1]} (time)")
                return None
        try:
            return iso_to_mjd(str(value), None if clock is None else str(clock))
        except ValueError:
            shown = f"{first} = {value!r}"
            if clock is not None:
                shown += f", {self.time_keywords[1]} = {clock!r}"
            reasons.append(f"{shown} is not an ISO date/time")
            return None


def _upper(keywords: Sequence[str]) -> list[str]:
    return [k.strip().upper() for k in keywords]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.strip().upper() if type(value) is str else str(value).strip().upper()


def _integer(values: Mapping[str, Any], keyword: str, reasons: list[str]) -> int | None:
    value = values.get(keyword)
    if value is None or type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        reasons.append(f"{keyword} = {value!r} is not an integer")
        return None


def read_exposure(path: str, options: CatalogOptions) -> Exposure:
    """Describe one file from its primary header (no cache, no discovery).

    Never raises for a bad file: it comes back with ``usable=False`` and a reason.
    """
    plan = _Plan(options)
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError as exc:
        return Exposure(real, False, f"cannot read: {exc.strerror or exc}")
    if not stat.S_ISREG(info.st_mode):
        reason = "is a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        return Exposure(real, False, reason, size=info.st_size, mtime_ns=info.st_mtime_ns)
    ((_, values, error, _),) = read_many([real], plan.keywords)
    return plan.exposure(real, info.st_size, info.st_mtime_ns, values, error)


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
        directory's ``catalog.ecsv`` (:mod:`refsmith.ecsv`).
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


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (if enabled) for the duration of the block."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _scan(
    inputs: Sequence[str],
    options: CatalogOptions,
    base_dir: Path | None,
    progress: Callable[[int, int], None] | None,
) -> Catalog:
    discovery = discover(inputs, options.pattern, base_dir)
    plan = _Plan(options)
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
                (p, stats[p].st_size, stats[p].st_mtime_ns, plan.key, e, v)
                for p, v, e, ok in fresh
                if ok
            )
    finally:
        if cache is not None:
            cache.close()
    build = plan.exposure
    exposures = [
        build(path, info.st_size, info.st_mtime_ns, *results[path])
        for path, info in stats.items()
    ]
    columns = tuple(dict.fromkeys(
        (*plan.required, *_upper(options.optional_keywords))
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

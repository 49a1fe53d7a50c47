"""Config sections (inputs, classify rules, output, pipeline, execution, recipes, report).

The pydantic models of every section but the top level (:mod:`refsmith.config.config`);
their value types are in :mod:`refsmith.config.values`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    field_validator,
    model_validator,
)

from refsmith.catalog.classify import TypeRule
from refsmith.config.values import (
    Duration,
    FitsKeyword,
    KeywordList,
    MaxDays,
    StringList,
    memory_size,
    parse_duration,
    problems_error,
    regex_text,
    step_tokens,
)

SAVE_STEP_EXTRAS = ("fitopt",)  # save_steps values that are not calwebb_detector1 steps


# ------------------------------------------------------------------ sections


class Section(BaseModel):
    """The base of every config model: unknown keys are errors, defaults are validated."""

    # field docstrings document the fields: config/reference.py reads them for the docs
    model_config = ConfigDict(extra="forbid", validate_default=True)


class TimeKeys(Section):
    """Where the observation time is: one MJD keyword, an ISO date(-time), or date + time.

    In YAML, ``time: EXPSTART`` is short for ``time: {mjd: EXPSTART}``.
    """

    mjd: FitsKeyword | None = None
    """Keyword holding the observation time as MJD (e.g. EXPSTART)."""
    date: FitsKeyword | None = None
    """Keyword holding a full ISO date-time (DATE-END), or the date when `time` is set (DATE-OBS).
    """
    time: FitsKeyword | None = None
    """Keyword holding the time of day that goes with `date` (TIME-OBS; ground-test TIME-END)."""

    @model_validator(mode="before")
    @classmethod
    def _from_keyword(cls, data: Any) -> Any:
        if isinstance(data, TimeKeys):
            return data
        if isinstance(data, str):
            return {"mjd": data}
        if not isinstance(data, Mapping):
            raise ValueError(
                "expected a keyword holding MJD (e.g. EXPSTART) or a mapping {mjd: KEY}, "
                "{date: KEY} or {date: KEY, time: KEY}"
            )
        return data

    @model_validator(mode="after")
    def _one_form(self) -> TimeKeys:
        if self.mjd and (self.date or self.time):
            raise ValueError("give either mjd or date (+ time), not both")
        if self.time and not self.date:
            raise ValueError("time needs date (e.g. {date: DATE-OBS, time: TIME-OBS})")
        if not (self.mjd or self.date):
            raise ValueError("empty: give mjd, date, or date + time")
        return self


class Inputs(Section):
    """Which files are exposures and which header keywords they must have."""

    paths: StringList = []
    """Files, directories (searched recursively), globs and `@list.txt` files; command-line inputs
    add to these. Relative paths are relative to the config file.
    """
    pattern: str | None = r"_uncal\.fits$"
    """Regular expression searched in the base name of files found in directories and globs (files
    named explicitly are always taken); null = every FITS file.
    """
    required_keywords: KeywordList = [
        "INSTRUME", "DETECTOR", "READPATT", "SUBARRAY", "NGROUPS", "NINTS",
    ]
    """Primary-header keywords every exposure must have; a file missing one is unusable, with that
    reason.
    """
    optional_keywords: KeywordList = []
    """Further keywords to read and keep (for `select`, `group_by` and the catalog)."""
    time: TimeKeys = TimeKeys(mjd="EXPSTART")
    """Where the observation time comes from: a keyword holding MJD (`EXPSTART`), or `{date:
    DATE-END}` (ISO date-time), or `{date: DATE-OBS, time: TIME-OBS}`.
    """

    _check_pattern = field_validator("pattern", mode="before")(regex_text)

    def time_spec(self) -> tuple[str | None, str | None, str | None]:
        """The time keywords as ``(mjd_key, date_key, time_key)``; unused ones are None."""
        return self.time.mjd, self.time.date, self.time.time


class TypeRuleConfig(Section):
    """One image-type rule; in YAML a flat mapping, e.g. ``{letter: B, EXP_TYPE: [NRC_BIAS]}``.

    ``letter`` and ``pattern`` (regular expression searched in the base name) are special;
    every other key is a FITS keyword whose value is a string or list (wildcards allowed).
    """

    letter: str | None = None
    """The letter of this image type in `imtypes` (default: the first letter of the name,
    upper-cased).
    """
    pattern: str | None = None
    """Regular expression searched in the file's base name as given (a symlink's own name;
    legacy configs classify this way).
    """
    match: dict[FitsKeyword, StringList] = {}
    """FITS keyword -> accepted value(s), written directly in the rule (`EXP_TYPE: [NRC_DARK]`);
    case-insensitive, wildcards allowed.
    """

    @model_validator(mode="before")
    @classmethod
    def _split_keywords(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError("expected a mapping of FITS keyword -> value(s), "
                             "plus optional 'letter' and 'pattern'")
        out: dict[str, Any] = {"match": {}}
        for key, value in data.items():
            name = str(key)
            if name.lower() in ("letter", "pattern"):
                out[name.lower()] = value
            else:
                out["match"][name] = value
        return out

    _check_pattern = field_validator("pattern", mode="before")(regex_text)

    @field_validator("letter", mode="before")
    @classmethod
    def _one_letter(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip().upper()
        if not re.fullmatch(r"[A-Z]", text):
            raise ValueError(f"letter must be one letter A-Z, got {value!r}")
        return text

    @model_validator(mode="after")
    def _not_empty(self) -> TypeRuleConfig:
        if not self.match and not self.pattern:
            raise ValueError("matches nothing: give FITS keyword values (e.g. EXP_TYPE: "
                             "[NRC_DARK]) and/or a filename pattern")
        return self

    def to_rule(self, name: str) -> TypeRule:
        """The :class:`~refsmith.catalog.classify.TypeRule` for image type ``name``."""
        return TypeRule(name=name, letter=self.letter or name[:1].upper(),
                        match={k: tuple(v) for k, v in self.match.items()},
                        pattern=self.pattern)


class Output(Section):
    """Where runs are written: ``<root>/<run>``."""

    root: str = "./refsmith_out"
    """Output root: holds the header cache, the calibrated-products store (`calibrated/`) and the
    run directories.
    """
    run: str = "auto"
    """Run directory name under `root`; `auto` = the config file's name, so planning or running the
    same config again updates and resumes the same run. A name with `#`s numbers the runs
    (`run###`: `run000`, `run001` ...; legacy `runID: AUTO`): plan and run take the latest
    one, `--new-run` starts the next.
    """

    @field_validator("run", mode="before")
    @classmethod
    def _simple_name(cls, value: Any) -> Any:
        text = str(value).strip()
        if not text or "/" in text or "\\" in text or text in (".", ".."):
            raise ValueError(f"run must be 'auto' or a directory name without '/' (not '.' or "
                             f"'..': the run directory stays inside the root), got {value!r}")
        if text.count("#") and not re.fullmatch(r"[^#]*#+[^#]*", text):
            raise ValueError(f"run: the '#'s of a numbered run must stand together "
                             f"(run###), got {value!r}")
        return text


class Pipeline(Section):
    """How the jwst pipeline is run: earlier products, reference files, CRDS."""

    search_dirs: StringList = []
    """Directories where earlier calibrated products of the inputs may be found (used as start
    files).
    """
    references: dict[str, str] = {}
    """Reference type -> `crds` (ask CRDS, the default), a file path or glob (matched on
    DETECTOR/SUBARRAY), or `self` (this run's own final reference file of that type).
    """
    offline: bool = False
    """Never contact a CRDS server: every reference the steps need must be given in `references`."""
    crds_timeout: PositiveFloat = 30
    """Seconds before an unreachable CRDS server fails a job (instead of CRDS's one hour)."""

    @field_validator("references", mode="before")
    @classmethod
    def _normalize_references(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        out, bad = {}, []
        for key, target in value.items():
            if not isinstance(target, str) or not target.strip():
                bad.append(((str(key),), "expected 'crds', 'self' or a file path/pattern"))
                continue
            text = target.strip()
            keyword = text.lower() in ("crds", "self")
            out[str(key).strip().lower()] = text.lower() if keyword else text
        if bad:
            raise problems_error(bad)
        return out


class Report(Section):
    """What the report compares the final reference files with."""

    baselines: dict[str, str] = {}
    """Reference type (or recipe name) -> the file or glob each final file of that type is
    compared with (matched on DETECTOR and SUBARRAY; a full-frame file is cut to a subarray).
    Without one, the report asks CRDS (on-line runs only) and else takes the same final file
    of the previous run directory under `output.root`.
    """
    sigma: PositiveFloat = 5.0
    """A pixel has changed when its difference from the baseline exceeds this many times the
    robust scatter (1.4826 MAD) of the differences.
    """

    @field_validator("baselines", mode="before")
    @classmethod
    def _lower_keys(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {str(k).strip().lower(): v for k, v in value.items()}


class Timeouts(Section):
    """How long one job may run (from its start on a worker) before it is stopped and
    failed; seconds or a duration (`90s`, `30min`, `2h`), `none` for no limit."""

    calibration: Duration = 3600.0
    """A calibration job (calwebb_detector1 on one exposure): a full-frame ramp takes minutes;
    an hour leaves room for a busy machine.
    """
    reffile: Duration = 7200.0
    """A reference-file job (the plug-in on one group): several minutes for full-frame groups.
    `recipes.<name>.timeout` overrides it for one recipe.
    """
    combine: Duration = 7200.0
    """A combine job (a recipe's individual files of one partition into the final one).
    `recipes.<name>.timeout` overrides it for one recipe.
    """


class Execution(Section):
    """Where jobs run: a local process pool, or Dask (optionally on a batch cluster)."""

    executor: Literal["local", "dask"] = "local"
    """`local` (a pool of worker processes on this machine) or `dask` (a Dask cluster)."""
    workers: int | Literal["auto"] = "auto"
    """Number of local worker processes; `auto` = number of cores."""
    retries: int = Field(1, ge=0)
    """How many times a failed job is retried before it is marked failed."""
    scheduler: str | None = None
    """Address of an existing Dask scheduler (`tcp://host:8786`)."""
    max_memory: str | None = None
    """Memory the run's jobs may use together on this machine (e.g. `20GiB`): a local job starts
    only while its estimate and those of the jobs running fit in it (a job larger than this on
    its own runs alone, with a warning); with Dask, the memory of the LocalCluster's workers
    together. Default: the memory available when the run starts (MemAvailable) less 0.5 GiB
    per worker.
    """
    recycle_memory: str | None = None
    """Replace a local worker after a job once its resident memory passes this (e.g. `4GiB`);
    default: never.
    """
    reffile_memory: str = "2GiB"
    """Memory budget of each reference-file and combine job: plug-ins size their blocks to it,
    and the executor counts it as the job's estimate. `recipes.<name>.memory` overrides it.
    """
    cluster: dict[str, Any] | None = None
    """A dask-jobqueue cluster to start: `kind` (htcondor, slurm or pbs) plus that class's keyword
    arguments (`queue`: an existing partition; `interface`: the network the scheduler and the
    workers share; `python`: the workers' interpreter), and `adapt` (options of its adaptive
    scaling when `workers` is not given; default interval 10s, wait_count 6, target_duration
    300s, 1-32 jobs). See docs/running.md, "On a cluster".
    """
    no_worker_timeout: Duration = 3600.0
    """Dask: stop the run (exit code 1, unfinished jobs left pending) after this long without a
    single worker, counted from the start too (batch jobs still waiting in the queue); a batch
    queue that often makes jobs wait longer needs more. `none` = wait for ever.
    """
    timeout: Timeouts = Timeouts()
    """Time limit of one job from its start on a worker, per kind: seconds, or `90s`, `30min`,
    `2h`; `none` = no limit (one value: the same for every kind). A job past it is failed with
    `timed out after N s` and not retried; its worker process is killed and replaced (Dask: the
    worker is restarted through its nanny), and the jobs that depend on it are blocked.
    """

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        if value is None or isinstance(value, Mapping | BaseModel):
            return Timeouts() if value is None else value
        seconds = parse_duration(value, "timeout")  # one message for a bad value, not three
        return dict.fromkeys(("calibration", "reffile", "combine"), seconds or "none")

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise ValueError(f"workers must be 'auto' or a whole number >= 1, got {value!r}")

    _check_memory = field_validator("max_memory", "recycle_memory", "reffile_memory",
                                    mode="before")(memory_size)

    @field_validator("cluster", mode="before")
    @classmethod
    def _cluster(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ValueError("cluster must be a mapping of dask-jobqueue options with "
                             "kind: htcondor, slurm or pbs")
        kind = str(value.get("kind", "")).strip().lower()
        if kind not in ("htcondor", "slurm", "pbs"):
            raise problems_error([(("kind",), f"must be htcondor, slurm or pbs, got "
                                          f"{value.get('kind')!r}")])
        return {**value, "kind": kind}

    @model_validator(mode="after")
    def _cluster_needs_dask(self) -> Execution:
        if self.cluster is not None and self.executor != "dask":
            raise problems_error([(("cluster",), "is only used with executor: dask; "
                                            "set executor: dask or remove cluster")])
        return self


class Recipe(Section):
    """How to make one kind of individual reference file from groups of exposures."""

    reftype: str | None = None
    """CRDS reference type made by this recipe (default: the recipe name)."""
    imtypes: str
    """Which inputs make one individual reference file: `D` (one dark), `DD` (a dark pair), `D+`
    (all darks), `DDFF` (a dark pair and a flat pair), `DF+` (all darks and flats)... See
    docs/grouping.md.
    """
    steps: list[str] = []
    """calwebb_detector1 steps that must be complete on the inputs (exactly these): names, or `X-`
    = every step up to X in the instrument's order (steps the pipeline skips by default are left
    out unless named). `rate` = ramp_fit.
    """
    save_steps: list[str] = []
    """Intermediate states to keep as well (step names, or `fitopt` for the optional ramp-fit
    products).
    """
    plugin: str | None = None
    """Plug-in that makes the reference file: a registered name, or `package.module:Class`
    (default: the recipe name).
    """
    params: dict[str, Any] = {}
    """Parameters passed to the plug-in (validated by it)."""
    select: dict[FitsKeyword, StringList] = {}
    """Only inputs whose header values match: FITS keyword -> accepted value(s) (wildcards
    allowed).
    """
    group_by: KeywordList | None = None
    """Keywords the members of a group must share (default: the top-level `group_by`)."""
    max_days: MaxDays | None = None
    """Time limits of this recipe, merged over the top-level `max_days`."""
    min_size: int = Field(1, ge=1)
    """Groups with fewer members are dropped, with a reason (for `X+` recipes)."""
    reuse: bool = True
    """Whether a dark subgroup may serve several flat subgroups (`DDFF`)."""
    memory: str | None = None
    """Memory budget of this recipe's reference-file and combine jobs, e.g. `6GiB` (default:
    `execution.reffile_memory`).
    """
    timeout: Duration | None = None
    """Time limit of this recipe's reference-file and combine jobs (seconds, `30min`, `2h`, or
    `none`); default: `execution.timeout.reffile` / `.combine`.
    """

    _check_memory = field_validator("memory", mode="before")(memory_size)

    @field_validator("imtypes", mode="before")
    @classmethod
    def _imtypes_text(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"expected an imtypes string such as DD, D+, DDFF or DF+, "
                             f"got {value!r}")
        return value.strip().upper()

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, value: Any) -> Any:
        return step_tokens(value, shorthand=True)

    @field_validator("save_steps", mode="before")
    @classmethod
    def _save_steps(cls, value: Any) -> Any:
        return step_tokens(value, shorthand=False, extras=SAVE_STEP_EXTRAS)

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> Any:
        return {} if value is None else value



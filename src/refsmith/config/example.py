"""The commented example config that ``refsmith init`` writes."""

from __future__ import annotations

import os
from pathlib import Path

from refsmith.errors import ConfigError

# ------------------------------------------------------------------ example


EXAMPLE_CONFIG = r"""# refsmith configuration (written by `refsmith init`; edit inputs and recipes).
# Relative paths are relative to this file; ~ and $ENVIRONMENT_VARIABLES are expanded.

instrument: nircam                 # optional: only this instrument's files (absent: every one)

inputs:
  paths: ["raw/"]                  # files, directories, globs, @list.txt; CLI args add to these
  pattern: '_uncal\.fits$'         # regular expression on the base name
  required_keywords: [INSTRUME, DETECTOR, READPATT, SUBARRAY, NGROUPS, NINTS]
  optional_keywords: [FILTER, PUPIL]
  time: EXPSTART                   # MJD keyword; or {date: DATE-OBS, time: TIME-OBS}
                                   # or {date: DATE-END} (full ISO date-time)

classify:                          # optional: replaces/extends the built-in EXP_TYPE table
  dark: {EXP_TYPE: [NRC_DARK]}     # letter D (first letter of the name)
  flat: {EXP_TYPE: [NRC_FLAT, NRC_LED]}
# bias: {letter: B, EXP_TYPE: [NRC_BIAS]}
# lamp: {letter: L, pattern: '_lamp_'}   # base-name regular expression
classify_defaults: true            # false: use only the rules above

group_by: [DETECTOR, SUBARRAY, READPATT]   # members of a group agree on these
max_days: {DD: 2.0, FF: 2.0, DDFF: 10.0}   # largest time span within a group (days)

output:
  root: ./refsmith_out             # runs go to <root>/<run>
  run: auto                        # auto: named after this file, resumed when re-run

pipeline:
  search_dirs: []                  # where earlier calibrated products may be found
  references: {}                   # reftype -> crds | file path/pattern | self
  offline: false                   # true: never contact CRDS
  crds_timeout: 30                 # seconds

execution:
  executor: local                  # local (process pool) or dask
  workers: auto
  retries: 1
# scheduler: tcp://scheduler:8786  # dask: an existing scheduler
# max_memory: 20GiB                # jobs' estimates together; default: memory available
# recycle_memory: 4GiB             # replace a local worker above this after a job
  reffile_memory: 2GiB             # budget of each reference-file / combine job
  timeout: {calibration: 1h, reffile: 2h, combine: 2h}   # per job; none = no limit
# cluster: {kind: htcondor, cores: 1, memory: 8GiB, disk: 4GiB}   # dask-jobqueue

recipes:                           # one per kind of individual reference file
  readnoise:
    imtypes: DD                    # pairs of darks
    steps: dq_init-                # "X-" = every step up to X for this instrument
    params: {sigma_clip: 3.0}      # passed to the plug-in
  superbias:
    imtypes: D+                    # all darks of a partition
    steps: dq_init-
    min_size: 2
  dark:
    imtypes: D+
    steps: linearity-              # superbias-subtracted, linearised ramps
    save_steps: [dq_init]          # intermediate states to keep too (or fitopt)
    memory: 4GiB                   # its reference-file jobs' budget (execution.reffile_memory)
    timeout: 4h                    # its reference-file and combine jobs' time limit
  gain:
    imtypes: DDFF                  # a dark pair with a flat pair
    steps: linearity-
    reuse: true                    # a dark pair may serve several flat pairs
  bad_pixel_mask:
    reftype: mask
    imtypes: DF+                   # all darks and all flats of a partition
    steps: linearity-              # the plug-in reads ramps, not rate images
    plugin: bad_pixel_mask         # default: the builtin of the recipe's name
"""


def write_example(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write :data:`EXAMPLE_CONFIG` to ``path``.

    Parameters
    ----------
    path : str or path-like
        Where to write.
    overwrite : bool
        Replace an existing file (default: refuse).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ConfigError
        When the file exists and ``overwrite`` is false, or cannot be written.
    """
    file = Path(path)
    if file.exists() and not overwrite:
        raise ConfigError(f"{file} already exists; choose another name or remove it first")
    try:
        file.write_text(EXAMPLE_CONFIG, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot write: {exc.strerror or exc}") from None
    return file



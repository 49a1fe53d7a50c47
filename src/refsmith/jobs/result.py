"""What one job did: :class:`CalibrationResult`, returned by calibration jobs
(:mod:`refsmith.calibrate.runner`) and reference-file and combine jobs
(:mod:`refsmith.plugins.runner`) alike, and recorded by the executors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CalibrationResult:
    """What one calibration job did.

    Attributes
    ----------
    ok : bool
        True when every output was written and has exactly its target state.
    outputs : tuple of str
        Final paths written (empty when ``ok`` is False: a failed job publishes nothing).
    error : str
        User-readable reason of a failure ("" when ok).
    log_path : str
        The job's log file (pipeline log records, and the traceback of a failure).
    seconds : float
        Wall time of the job.
    permanent : bool
        True when trying again cannot help (a configuration error: no such plug-in, bad
        parameters): the job is failed without retries.
    """

    ok: bool
    outputs: tuple[str, ...]
    error: str = ""
    log_path: str = ""
    seconds: float = 0.0
    permanent: bool = False

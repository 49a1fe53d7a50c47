"""The contract between planning and execution: the job records a plan holds, what a job
returns, and a job's log file.

``records`` (:class:`CalibrationJob`, :class:`ReffileJob`, :class:`CombineJob` and their
parts; plan.json's job entries, with a tested round trip), ``result``
(:class:`CalibrationResult`: what any job did) and ``log`` (one job's log file). Planning
builds the records, the executors run them; neither imports the other.
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {
    "CalibrationJob": "records", "CombineJob": "records", "ProductOutput": "records",
    "ReffileInput": "records", "ReffileJob": "records", "Rejected": "records",
    "StartChoice": "records",
    "CalibrationResult": "result",
    "LOGGER_NAMES": "log", "job_log": "log",
}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)

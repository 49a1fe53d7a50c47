"""A job's log file: the pipeline's and refsmith's log records of one job, and nothing of
them on the worker's console. Used by calibration jobs (:mod:`refsmith.calibrate.runner`) and
plug-in jobs (:mod:`refsmith.plugins.runner`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOGGER_NAMES: tuple[str, ...] = (
    "stpipe", "jwst", "stcal", "stdatamodels", "CRDS", "py.warnings", "refsmith",
)
"""Loggers whose records go into a job's log file (stpipe's own list, plus refsmith)."""

_LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


class _LastError(logging.Handler):
    """Remembers the messages of ERROR records (for the job's error message)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.messages.append(f"{record.name}: {record.getMessage()}".strip()[:500])


@contextlib.contextmanager
def job_log(log_path: Path) -> Iterator[list[str]]:
    """Send the pipeline loggers' records (INFO and up) to ``log_path`` for this job only.

    While the job runs, the loggers of :data:`LOGGER_NAMES` do not propagate (nothing of the
    pipeline reaches the console of a worker) and crds' own stderr handler is removed;
    Python warnings are logged to ``py.warnings``. Everything is restored afterwards.
    Yields the list the messages of ERROR records are appended to.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    handler.setLevel(logging.INFO)
    errors: list[str] = []
    last_error = _LastError(errors)
    loggers = [logging.getLogger(name) for name in LOGGER_NAMES]
    levels = [logger.level for logger in loggers]
    propagates = [logger.propagate for logger in loggers]
    handler_lists = [list(logger.handlers) for logger in loggers]
    py_warnings = logging.getLogger("py.warnings")

    def show_warning(message: Any, category: Any, filename: str, lineno: int,
                     file: Any = None, line: Any = None) -> None:
        py_warnings.warning(
            "%s", warnings.formatwarning(message, category, filename, lineno, line).strip()
        )

    # crds prints to stderr through its own handler; stpipe removes it too while it logs
    crds_log = sys.modules.get("crds.core.log")
    crds_logger = getattr(crds_log, "THE_LOGGER", None)
    old_console = getattr(crds_logger, "console", None)
    crds_console = old_console is not None
    for logger in loggers:
        logger.addHandler(handler)
        logger.addHandler(last_error)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.propagate = False  # the job's records go to its log, not the console
    if crds_console:
        crds_logger.remove_console_handler()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            yield errors
    finally:
        if crds_console and crds_logger.console is None:
            crds_logger.add_console_handler()
        for logger, level, propagate, handlers in zip(loggers, levels, propagates,
                                                      handler_lists, strict=True):
            # the exact handler list, in its order (crds' console handler comes back new)
            logger.handlers[:] = [crds_logger.console if old_console is not None
                                  and h is old_console else h for h in handlers]
            logger.setLevel(level)
            logger.propagate = propagate
        handler.close()

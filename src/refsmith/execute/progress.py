"""Progress of a run (a rich bar on a terminal, plain periodic lines otherwise) and
SIGTERM handled as Ctrl-C, so a killed batch job stops as cleanly as an interrupted one."""

from __future__ import annotations

import contextlib
import signal
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any


class Reporter:
    """Progress: a rich bar on a terminal, periodic plain lines otherwise."""

    def __init__(self, total: int, mode: str, interval: float, stream: Any) -> None:
        self.total = total
        self.stream = stream
        self.interval = interval
        self.started = time.monotonic()
        self.last_line = 0.0
        self.last_counts: Counter[str] = Counter()
        if mode == "auto":
            mode = "bar" if getattr(stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self._bar: Any = None
        self._task: Any = None
        self._initial = 0

    def __enter__(self) -> Reporter:
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                "[progress.description]{task.description}", BarColumn(),
                MofNCompleteColumn(), "{task.fields[rate]}", TimeElapsedColumn(), "ETA",
                TimeRemainingColumn(), console=Console(file=self.stream), transient=False)
            self._bar.start()
            self._task = self._bar.add_task("jobs", total=self.total, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, states: Mapping[str, str]) -> None:
        counts = Counter(states.values())
        finished = counts["done"] + counts["cached"] + counts["failed"] + counts["blocked"]
        if not self.last_counts:
            self._initial = finished
        self.last_counts = counts
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (finished - self._initial) / elapsed
        if self.mode == "bar" and self._bar is not None:
            description = (f"{counts['done'] + counts['cached']} done, {counts['failed']} "
                           f"failed, {counts['running']} running{_queued(counts)}")
            self._bar.update(self._task, completed=finished, description=description,
                             rate=f"{rate * 60:.1f} jobs/min")
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self.last_line >= self.interval or finished == self.total:
                self.last_line = now
                self.line(counts, finished, rate)

    def notice(self, text: str) -> None:
        """A warning for the user, printed at once (above the bar on a terminal), whatever
        the progress mode."""
        if self._bar is not None:
            from rich.markup import escape

            self._bar.console.print(f"[yellow]warning:[/] {escape(text)}")
        else:
            self.stream.write(f"warning: {text}\n")
            self.stream.flush()

    def line(self, counts: Mapping[str, int], finished: int, rate: float) -> None:
        left = self.total - finished
        eta = f"{left / rate:.0f} s" if rate > 0 and left else "-"
        self.stream.write(
            f"[{time.monotonic() - self.started:7.1f} s] {finished}/{self.total} finished: "
            f"{counts.get('done', 0)} done, {counts.get('cached', 0)} cached, "
            f"{counts.get('failed', 0)} failed, {counts.get('blocked', 0)} blocked, "
            f"{counts.get('running', 0)} running{_queued(counts)}; {rate * 60:.1f} jobs/min; "
            f"ETA {eta}\n")
        self.stream.flush()


def _queued(counts: Mapping[str, int]) -> str:
    """``, N queued`` (submitted to a Dask scheduler, not started on a worker), or ''."""
    return f", {counts['queued']} queued" if counts.get("queued") else ""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C (clean store), in the main thread only."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt



"""Reading many primary headers: in this process, or here and in a pool of spawned reader
processes when many files are new (the task each reader runs is
:func:`refsmith.catalog.headers.read_many`). Used by :func:`refsmith.catalog.catalog.scan`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from refsmith.catalog.headers import read_many

# Files per task of the reading processes.
CHUNK_FILES = 256

Results = list[tuple[str, dict[str, Any] | None, str, bool]]


def read_headers(
    paths: list[str],
    keywords: Sequence[str],
    readers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    done: int = 0,
    total: int = 0,
) -> Results:
    """:func:`read_many` for many files, in ``readers`` processes (this one included).

    Parameters
    ----------
    paths : list of str
        Files to read.
    keywords : sequence of str
        Keywords wanted (S_* step cards are always returned).
    readers : int
        Reading processes; above 1, ``readers - 1`` processes are spawned.
    progress : callable, optional
        Called as ``progress(done + files read so far, total)`` after every chunk.
    done, total : int
        Offsets for ``progress`` (files already handled, files in all).

    Returns
    -------
    list of (path, values, error, cacheable)
        In the order of ``paths`` (see :func:`read_many`).
    """
    if readers > 1 and len(paths) > CHUNK_FILES:
        return _read_parallel(paths, tuple(keywords), readers, progress, done, total)
    results: Results = []
    for start in range(0, len(paths), CHUNK_FILES):
        results.extend(read_many(paths[start : start + CHUNK_FILES], keywords))
        if progress:
            progress(done + len(results), total)
    return results


def _read_parallel(
    paths: list[str],
    keywords: tuple[str, ...],
    readers: int,
    progress: Callable[[int, int], None] | None = None,
    done: int = 0,
    total: int = 0,
    *,
    local: bool = True,
) -> Results:
    """Read chunks of ``paths`` here and in ``readers - 1`` spawned processes.

    Chunks go to the pool only once a reader has started (spawning takes ~0.1-0.3 s),
    and this process reads a chunk whenever every reader has work queued: no core
    waits, and a scan that ends before the pool is up never waits for it. A chunk lost
    with a dead reader is read here.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    chunks = [paths[i : i + CHUNK_FILES] for i in range(0, len(paths), CHUNK_FILES)]
    results: dict[int, Results] = {}
    pending: dict[Future[Results], int] = {}
    queued = 2 * (readers - 1)
    following = 0  # the next chunk to hand out
    broken = False
    pool = ProcessPoolExecutor(readers - 1, mp_context=multiprocessing.get_context("spawn"))
    started = pool.submit(os.getpid)  # done once a reader runs
    try:
        while following < len(chunks) or pending:
            while (
                not broken
                and started.done()
                and following < len(chunks)
                and len(pending) < queued
            ):
                try:
                    pending[pool.submit(read_many, chunks[following], keywords)] = following
                except (BrokenProcessPool, RuntimeError):
                    broken = True
                    break
                following += 1
            if (local or broken) and following < len(chunks):
                results[following] = read_many(chunks[following], keywords)
                done += len(chunks[following])
                following += 1
                finished = [future for future in pending if future.done()]
            elif pending:
                finished = list(wait(pending, return_when=FIRST_COMPLETED).done)
            else:  # local=False: wait for the first reader
                finished = []
                wait([started])
            for future in finished:
                index = pending.pop(future)
                try:
                    results[index] = future.result()
                except Exception as exc:  # BrokenProcessPool: a reader died
                    broken = broken or isinstance(exc, BrokenProcessPool)
                    results[index] = read_many(chunks[index], keywords)
                done += len(chunks[index])
            if progress:
                progress(done, total)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [result for index in range(len(chunks)) for result in results[index]]

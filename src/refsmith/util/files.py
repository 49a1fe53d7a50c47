"""Writing files so that no half-written file ever has its final name; the temporaries a
killed process leaves behind, found again; writes that fail for lack of space, told apart.

Temporary names (every one hidden, beside its target):

* ``.<name>.<pid>@<host>.<8 random>.part`` / ``.tmp``: :func:`write_temporary` (calibrated
  products, run-directory files, provenance sidecars). The writer's pid and host tell a
  stale temporary (its writer is gone) from one being written by a live process.
* ``.<stem>.plugin.<8 hex>.fits`` / ``.<stem>.final.<8 hex>.fits``: a reference-file or
  combine job's scratch files (:mod:`refsmith.plugins.runner`), only ever in the run
  directory, which the run lock keeps to one process.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
import socket
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from refsmith.errors import RefsmithError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""errno values of a write that failed for lack of space (or a file-size limit)."""

_DISK_FULL_WORDS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (the file system's or the process's file-size limit, "
                 "ulimit -f)",
}

_TEMPORARY = re.compile(r"\.(?P<target>.+?)\.(?:(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.)?"
                        r"[a-z0-9_]{8}\.(?:part|tmp)")
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")
_SCRATCH = re.compile(r"\.(?P<stem>.+?)\.(?:plugin|final)\.[0-9a-f]{8}\.fits")


class DiskFullError(RefsmithError):
    """A file of the run could not be written for lack of space (exit code 1: the run
    stopped, nothing is wrong with the configuration)."""

    exit_code = 1


def host_token() -> str:
    """This host's name as it appears in temporary names (letters, digits, '-')."""
    name = socket.gethostname().split(".")[0]
    return re.sub(r"[^A-Za-z0-9-]+", "-", name)[:40] or "host"


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_temporary(path: str | Path, write: Callable[[BinaryIO], object], *,
                    suffix: str = ".tmp", sync: bool = False) -> Path:
    """Write a temporary file beside ``path`` with ``write(handle)``; return its path.

    The file gets the permissions a plain ``open(path, "w")`` would give (``mkstemp``
    alone makes it private to its owner), is flushed to the disk when ``sync``, and is
    removed on any failure. The caller renames it into place (or removes it).
    """
    path = Path(path)
    descriptor, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}@{host_token()}.", suffix=suffix)
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb", buffering=1 << 16) as handle:
            write(handle)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~current_umask())
    except BaseException as exc:
        # told apart while the partial file still takes its room (see disk_full_error)
        full = disk_full_error(exc, path.parent) if isinstance(exc, Exception) else None
        temporary.unlink(missing_ok=True)
        if full is not None and full is not exc:
            raise full from exc
        raise
    return temporary


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` with ``write(handle)`` through :func:`write_temporary`, then rename
    it into place: ``path`` is the old file or the complete new one, never a part."""
    temporary = write_temporary(path, write)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """:func:`atomic_write` of ``text`` in UTF-8."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


# ------------------------------------------------------------------ disk full


def disk_full_error(error: BaseException | None,
                    directory: str | os.PathLike[str] | None = None) -> OSError | None:
    """The OSError of a write that failed for lack of space (ENOSPC, EDQUOT, EFBIG) in
    ``error`` or in the exceptions it was raised from or while handling (astropy, for one,
    may fail again while cleaning up and raise something else), or None.

    numpy's ``tofile`` (astropy writes FITS data with it) reports a short write as
    ``OSError("N requested and M written")``, without errno. Given the ``directory``
    written, with the partial file still in it, such an error counts as ENOSPC when the
    file system has less room left than was requested, and as EFBIG when a file there
    has reached the process's file-size limit (RLIMIT_FSIZE); it is returned as such an
    OSError naming the directory.
    """
    seen: set[int] = set()
    short: OSError | None = None
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError):
            if error.errno in DISK_FULL_ERRNOS:
                return error
            if short is None and error.errno is None and _SHORT_WRITE.search(str(error)):
                short = error
        error = error.__cause__ or error.__context__
    if short is None or directory is None:
        return None
    return _short_write_cause(short, os.fspath(directory))


def _short_write_cause(error: OSError, directory: str) -> OSError | None:
    match = _SHORT_WRITE.search(str(error))
    requested = int(match[1]) - int(match[2]) if match else 1
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        with contextlib.suppress(OSError):
            for entry in os.scandir(directory):
                if entry.is_file(follow_symlinks=False) and (
                        entry.stat().st_size + requested > soft):
                    return OSError(errno.EFBIG, os.strerror(errno.EFBIG), directory)
    with contextlib.suppress(OSError):
        space = os.statvfs(directory)
        if space.f_bavail * space.f_frsize < max(requested, 1):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), directory)
    return None


@contextlib.contextmanager
def disk_full_stops(what: str | os.PathLike[str]) -> Iterator[None]:
    """Within: an OSError for lack of space while writing ``what`` (a file or directory)
    is a :class:`DiskFullError` (exit code 1, one line), other errors pass."""
    try:
        yield
    except OSError as exc:
        full = disk_full_error(exc, what if os.path.isdir(what) else None)
        if full is None:
            raise
        raise DiskFullError(f"cannot write {os.fspath(what)}: "
                            f"{disk_full_message(full, what)}; free some space and run "
                            "again") from None


def ignore_disk_full(exc_type: type[BaseException] | None, exc: BaseException | None,
                     traceback: object) -> bool:
    """An exit callback for ``ExitStack.push``, pushed before a job's log is opened: a job
    log that cannot be flushed for lack of space when it is closed does not replace the
    job's own result (its error says what could not be written)."""
    return exc is not None and disk_full_error(exc) is not None


def disk_full_message(error: OSError, path: str | os.PathLike[str]) -> str:
    """``no space left on device (<path>)``: the file the OSError names, else ``path``
    (the file or directory being written)."""
    words = _DISK_FULL_WORDS.get(error.errno or 0, error.strerror or str(error))
    return f"{words} ({error.filename or os.fspath(path)})"


def is_disk_full_message(text: str) -> bool:
    """Whether ``text`` (a job's error) says a write failed for lack of space."""
    return any(f"{words} (" in text for words in _DISK_FULL_WORDS.values())


# ------------------------------------------------------------------ stale temporaries


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. another user's process: alive
        return False
    return False


def stale_temporaries(directory: str | os.PathLike[str], *,
                      targets: Collection[str] | None = None,
                      exclusive: bool = False) -> list[Path]:
    """Temporaries refsmith wrote in ``directory`` whose writer is gone (not recursive).

    Parameters
    ----------
    directory : path
        Where to look.
    targets : collection of str, optional
        Only temporaries of these file names (default: of any name).
    exclusive : bool
        The directory is this process's alone (the run directory, under the run lock):
        a temporary without a writer's pid (a plug-in's scratch file, a name of an earlier
        version) is stale too. Elsewhere (the calibrated store, shared by runs) only a
        temporary whose writer's pid is gone from this host is.

    Returns
    -------
    list of Path
        Never a temporary of a live process on this host, nor of another host.
    """
    host = host_token()
    found: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        name = entry.name
        if not name.startswith("."):
            continue
        match = _TEMPORARY.fullmatch(name)
        scratch = None if match else _SCRATCH.fullmatch(name)
        if match is None and scratch is None:
            continue
        target = match["target"] if match else f"{scratch['stem']}.fits"
        if targets is not None and target not in targets:
            continue
        pid = match["pid"] if match else None
        if pid is not None:
            if match["host"] != host or not _process_gone(int(pid)):
                continue
        elif not exclusive:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
        except OSError:
            continue
        found.append(Path(entry.path))
    return sorted(found)


def remove_files(paths: Iterable[Path]) -> list[Path]:
    """Remove ``paths`` (those already gone are skipped); return the ones removed."""
    removed = []
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue
        removed.append(path)
    return removed

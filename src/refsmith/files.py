"""Writing files so that no half-written file ever has its final name."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                        suffix=suffix)
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb", buffering=1 << 16) as handle:
            write(handle)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~current_umask())
    except BaseException:
        temporary.unlink(missing_ok=True)
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

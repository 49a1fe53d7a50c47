"""Discovery: the input files named by files, directories, globs and ``@list`` files.

Directories are searched recursively for FITS names (symlinked subdirectories not
followed) and filtered by the basename pattern; each file is kept once (by device and
inode), under its real path; the name a symlink gave it is kept too (files are classified
by the name the user gave, as jwst_reffiles did). Used by
:func:`refsmith.catalog.catalog.scan`.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

# Suffixes of the files taken from directories (globs and explicit files take any name).
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")


@dataclass
class Discovery:
    """The files named by the inputs.

    ``paths``: absolute, symlinks resolved, sorted, each file once (by device + inode).
    ``missing``: inputs (or list-file lines) that do not exist or matched no file.
    ``duplicates``: files found more than once (same path twice, symlink, hard link).
    ``filtered``: files skipped by the basename pattern.
    ``names``: real path -> the base name it was given, where that differs from its own (a
    symlink's name; the first given, in input order, of a file reached several ways).
    """

    paths: list[str]
    missing: list[str] = field(default_factory=list)
    duplicates: int = 0
    filtered: int = 0
    # path -> os.stat_result of the file, from discovering (size and mtime for the cache)
    stats: dict[str, os.stat_result] = field(default_factory=dict, repr=False, compare=False)
    # directories searched whole (real paths): the header cache forgets files gone there
    walked: tuple[str, ...] = field(default=(), repr=False, compare=False)
    names: dict[str, str] = field(default_factory=dict)


class _Finder:
    """Collects files for :func:`discover` (one instance per call)."""

    def __init__(self, pattern: str | None) -> None:
        self.regex = re.compile(pattern) if pattern else None
        self.found: list[tuple[str, os.stat_result]] = []  # (real path, stat), repeats too
        # (index in found, name) of the files reached by a symlink of another name
        self.links: list[tuple[int, str]] = []
        self.missing: list[str] = []
        self.filtered = 0
        self.lists: set[str] = set()
        self.walked: list[str] = []

    def add_input(self, item: str, base: str) -> None:
        text = os.path.expanduser(item.strip())
        if text.startswith("@"):
            self.add_list(text, os.path.join(base, os.path.expanduser(text[1:])))
            return
        path = os.path.join(base, text)
        before = len(self.found)
        if os.path.isdir(path):
            self.walk(path)
        elif os.path.lexists(path):
            self.add_file(path, filtered=False)
        elif glob.has_magic(path):
            for match in sorted(glob.glob(path, recursive=True)):
                if os.path.isdir(match):
                    self.walk(match)
                else:
                    self.add_file(match, filtered=True)
        if len(self.found) == before:
            self.missing.append(item)

    def add_list(self, item: str, path: str) -> None:
        real = os.path.realpath(path)
        if real in self.lists:
            return  # a list including itself
        self.lists.add(real)
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError:
            self.missing.append(item)
            return
        for line in lines:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                self.add_input(entry, os.path.dirname(os.path.abspath(path)))

    def walk(self, directory: str) -> None:
        """Every FITS file below ``directory`` (symlinked subdirectories not followed)."""
        stack = [os.path.realpath(directory)]
        self.walked.append(stack[0])
        regex = self.regex
        found = self.found
        while stack:
            current = stack.pop()
            try:
                entries = list(os.scandir(current))
            except OSError:
                self.missing.append(current)
                continue
            for entry in entries:
                name = entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif not name.endswith(FITS_SUFFIXES) and not name.lower().endswith(
                    FITS_SUFFIXES
                ):
                    continue
                elif regex is not None and not regex.search(name):
                    self.filtered += 1
                else:
                    try:
                        info = entry.stat()
                    except OSError:
                        self.missing.append(entry.path)  # broken symlink
                        continue
                    if entry.is_symlink():
                        self.add_found(os.path.realpath(entry.path), info, name)
                    elif stat.S_ISREG(info.st_mode):
                        found.append((entry.path, info))

    def add_file(self, path: str, *, filtered: bool) -> None:
        if filtered and self.regex is not None and not self.regex.search(os.path.basename(path)):
            self.filtered += 1
            return
        try:
            info = os.stat(path)
        except OSError:
            self.missing.append(path)
            return
        self.add_found(os.path.realpath(path), info, os.path.basename(path))

    def add_found(self, real: str, info: os.stat_result, name: str) -> None:
        """A file found under ``name``, whose real path is ``real``."""
        if not real.endswith("/" + name):
            self.links.append((len(self.found), name))
        self.found.append((real, info))

    def given_names(self) -> dict[str, str]:
        """Real path -> the name it was first given (in input order), where not its own."""
        if not self.links:
            return {}
        linked = dict(self.links)
        targets = {self.found[i][0] for i in linked}
        first: dict[str, int] = {}
        for index, (path, _) in enumerate(self.found):
            if path in targets and path not in first:
                first[path] = index
        return {path: linked[index] for path, index in first.items() if index in linked}


def discover(inputs: Sequence[str], pattern: str | None, base_dir: Path | None = None) -> Discovery:
    """Find the files named by ``inputs``.

    Parameters
    ----------
    inputs : sequence of str
        Files, directories, glob patterns (``*``, ``?``, ``[]``, recursive ``**``) and
        ``@list.txt`` files (one input per line, ``#`` comment lines; relative entries
        are relative to the list file; entries may themselves be directories, globs or
        lists). Directories are searched recursively for ``*.fits``, ``*.fit``,
        ``*.fts`` and their ``.gz`` forms; symlinked subdirectories are not followed.
    pattern : str or None
        Regular expression searched in the base name of every file found in a
        directory or by a glob (e.g. ``_uncal\\.fits$``). A file named explicitly (on
        the command line or in a list) is always taken.
    base_dir : Path, optional
        What relative inputs are relative to (default: the current directory).

    Returns
    -------
    Discovery
        Sorted unique real paths; a file reached twice (repeated input, symlink, hard
        link) is counted in ``duplicates`` and kept once (its first path in sorted order,
        with the name it was first given there, in input order).
    """
    finder = _Finder(pattern)
    base = os.path.abspath(os.fspath(base_dir)) if base_dir is not None else os.getcwd()
    for item in inputs:
        finder.add_input(str(item), base)
    names = finder.given_names()
    finder.found.sort(key=itemgetter(0))
    first: dict[tuple[int, int], str] = {}  # (device, inode) -> first path in sorted order
    stats: dict[str, os.stat_result] = {}
    for path, info in finder.found:
        inode = (info.st_dev, info.st_ino)
        if inode not in first:  # else: the same path again, a symlink or a hard link
            first[inode] = path
            stats[path] = info
    if names:
        names = {path: name for path, name in names.items() if path in stats}
    paths = list(stats)
    duplicates = len(finder.found) - len(paths)
    return Discovery(paths, finder.missing, duplicates, finder.filtered, stats,
                     tuple(finder.walked), names)


"""The SQLite cache of primary-header values read by :mod:`refsmith.catalog.headers`.

``<output root>/catalog.sqlite``, shared by every config of an output root; rows keyed by
path + size + mtime_ns + ctime_ns + inode: a header edited in place with its size and mtime
kept still changes the ctime (version 1 keyed on size and mtime only, and showed the old
header).
"""

from __future__ import annotations

import json
import os
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from refsmith.catalog.headers import STEP_PREFIX


class HeaderCache:
    """SQLite cache of header values, keyed by path + size + mtime_ns + ctime_ns + inode.

    Each row stores the keyword values read (JSON) and which keywords were looked for,
    so that a row is reused only when it has every keyword needed now; a structural read
    error (not FITS, truncated) is cached too. WAL journal, ``synchronous=NORMAL``.
    """

    SCHEMA_VERSION = 2

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> HeaderCache | None:
        """Open (creating it if needed) the cache at ``path``; None if it is unusable."""
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            db = sqlite3.connect(os.fspath(path), timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if db.execute("PRAGMA user_version").fetchone()[0] != cls.SCHEMA_VERSION:
                with db:
                    db.execute("DROP TABLE IF EXISTS headers")
                    db.execute(
                        "CREATE TABLE headers (path TEXT PRIMARY KEY, size INTEGER NOT NULL,"
                        " mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,"
                        " inode INTEGER NOT NULL, wanted TEXT NOT NULL, error TEXT NOT NULL,"
                        " keywords TEXT) WITHOUT ROWID"
                    )
                    db.execute(f"PRAGMA user_version = {cls.SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            warnings.warn(f"header cache {path} not used: {exc}", stacklevel=2)
            return None
        return cls(db)

    def lookup(
        self,
        stats: Mapping[str, os.stat_result],
        keywords: Sequence[str],
        key: str,
        covered_by: Callable[[str], bool],
    ) -> dict[str, tuple[dict[str, Any] | None, str]]:
        """Cached (values, error) of every file in ``stats`` whose row is still valid.

        A row is valid when size, mtime_ns, ctime_ns and inode equal the file's and it
        looked for every
        keyword needed now (``covered_by(row's key)``). Values of keywords not needed now
        are dropped (when the row's key differs from ``key``).
        """
        try:
            rows = self._rows(stats)
        except sqlite3.Error as exc:
            warnings.warn(f"header cache not used: {exc}", stacklevel=2)
            return {}
        needed = set(keywords)
        hits: dict[str, tuple[dict[str, Any] | None, str]] = {}
        valid: list[tuple[str, bool]] = []  # (path, keep every value)
        blobs: list[str] = []
        for path, size, mtime_ns, ctime_ns, inode, wanted, error, blob in rows:
            info = stats.get(path)
            if (info is None or info.st_mtime_ns != mtime_ns or info.st_size != size
                    or info.st_ctime_ns != ctime_ns or info.st_ino != inode):
                continue
            if error:
                hits[path] = (None, error)
            elif wanted == key or covered_by(wanted):
                valid.append((path, wanted == key))
                blobs.append(blob)
        # One loads for all rows is ~2x faster than one per row, orjson's 2x faster again
        # (20 ms of 10,000 rows); json.dumps may have written NaN, which only json reads.
        text = f"[{','.join(blobs)}]"
        try:
            decoded = orjson.loads(text)
        except orjson.JSONDecodeError:
            decoded = json.loads(text)
        for (path, exact), values in zip(valid, decoded, strict=True):
            if not exact:
                values = {k: v for k, v in values.items() if k in needed or k[:2] == STEP_PREFIX}
            hits[path] = (values, "")
        return hits

    def _rows(self, stats: Mapping[str, os.stat_result]) -> list[tuple[Any, ...]]:
        query = ("SELECT path, size, mtime_ns, ctime_ns, inode, wanted, error, keywords "
                 "FROM headers")
        if len(stats) > 2000:
            return self._db.execute(query).fetchall()
        paths = list(stats)
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows.extend(self._db.execute(f"{query} WHERE path IN ({marks})", chunk))
        return rows

    def store(self, rows: Iterable[tuple[str, os.stat_result, str, str,
                                         dict[str, Any] | None]]) -> None:
        """Insert or replace rows of (path, its stat, key, error, values)."""
        dumps = json.dumps
        try:
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO headers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (p, i.st_size, i.st_mtime_ns, i.st_ctime_ns, i.st_ino, k, e,
                         None if v is None else dumps(v))
                        for p, i, k, e, v in rows
                    ),
                )
        except sqlite3.Error as exc:
            warnings.warn(f"header cache not updated: {exc}", stacklevel=2)

    def prune(self, roots: Iterable[str], present: Mapping[str, Any]) -> int:
        """Forget files below the directories ``roots`` (real paths, walked whole) that
        are not in ``present`` and no longer exist; return how many.

        The cache is shared by every config of an output root, so a row is only dropped
        when its file is gone, never because this scan did not look for it.
        """
        gone = []
        for root in dict.fromkeys(roots):
            low, high = root.rstrip("/") + "/", root.rstrip("/") + "0"  # '0' follows '/'
            for (path,) in self._db.execute(
                    "SELECT path FROM headers WHERE path >= ? AND path < ?", (low, high)):
                if path not in present and not os.path.lexists(path):
                    gone.append((path,))
        if gone:
            try:
                with self._db:
                    self._db.executemany("DELETE FROM headers WHERE path = ?", gone)
            except sqlite3.Error as exc:
                warnings.warn(f"header cache not pruned: {exc}", stacklevel=2)
                return 0
        return len(gone)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

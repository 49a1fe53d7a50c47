"""A file's identity: what says that a file is still the one a plan or a product used.

The cheap part is the metadata: size, mtime_ns, ctime_ns and inode. Writing to a file
changes its ctime, which no user tool can set back, so equal metadata means an unchanged
file. The content digest (BLAKE2b of every byte) is the expensive part: it is computed
where the file is read anyway (a calibration job hashes its raw exposure before the
pipeline reads it: ~0.3 s for a 168 MB full-frame ramp) and recorded in the product's
provenance, and compared only when the metadata differ, so that a file copied or restored
with the same bytes (new inode and ctime) is still recognised as the same.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["IDENTITY_FIELDS", "changed", "content_digest", "file_identity", "stat_identity"]

IDENTITY_FIELDS = ("size", "mtime_ns", "ctime_ns", "inode")
_CHUNK = 1 << 20


def stat_identity(info: os.stat_result) -> dict[str, int]:
    """The metadata identity of a ``stat`` result."""
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "ctime_ns": info.st_ctime_ns,
            "inode": info.st_ino}


def content_digest(path: str | os.PathLike[str]) -> str:
    """``blake2b:<hex>`` of the file's bytes."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return f"blake2b:{digest.hexdigest()}"


def file_identity(path: str | os.PathLike[str], *, digest: bool = False
                  ) -> dict[str, Any] | None:
    """Metadata identity of ``path`` (and its content digest); None when it is gone."""
    try:
        identity: dict[str, Any] = stat_identity(os.stat(path))
        if digest:
            identity["digest"] = content_digest(path)
    except OSError:
        return None
    return identity


def changed(path: str | os.PathLike[str], recorded: Mapping[str, Any]) -> str:
    """Why ``path`` is no longer the file ``recorded`` describes ('' when it still is).

    Only the fields ``recorded`` has are compared (older records have fewer). When the
    metadata differ but a digest was recorded, the content decides.
    """
    now = file_identity(path)
    if now is None:
        return f"{path} is gone"
    different = [f for f in IDENTITY_FIELDS if f in recorded and recorded[f] != now[f]]
    if not different:
        return ""
    if recorded.get("digest"):
        try:
            if content_digest(path) == recorded["digest"]:
                return ""
        except OSError as exc:
            return f"{path} cannot be read: {exc.strerror or exc}"
        return f"{path} has changed (its content differs)"
    return f"{path} has changed ({', '.join(different)})"

"""Storage that cannot be written: a read-only SALESALIGN_HOME, a full disk.

Every layer reports these differently (an OSError, DuckDB's "Could not write file ...: No space left on
device", SQLite's "disk I/O error" from the Dagster instance); `salesalign run` says it once, plainly.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "a file would exceed the file size limit",
    errno.EROFS: "it is on a read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
STORAGE_MARKERS = {os.strerror(code): code for code in STORAGE_ERRNOS} | {
    "database or disk is full": errno.ENOSPC,  # SQLite (the Dagster instance)
    "attempt to write a readonly database": errno.EROFS,
    "disk I/O error": None,  # SQLite's word for a failed write: the file system decides which
}


class StorageError(Exception):
    """SALESALIGN_HOME (or DAGSTER_HOME) cannot be written; `str()` is the message for the user."""


def probe_writable(folder: Path) -> None:
    """Create, write, sync and remove a small file in `folder` (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".salesalign-write-probe.{os.getpid()}"
        try:
            with probe.open("wb") as f:
                f.write(b"\0" * 65536)
                f.flush()
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            raise StorageError(storage_message(folder, exc.errno, before_start=True)) from exc
        raise


def storage_errno(folder: Path, texts: list[str]) -> int | None:
    """The storage problem behind error messages `texts`, if any (looking at the folder's file system
    when the message alone does not say, as with SQLite's "disk I/O error")."""
    for text in texts:
        for marker, code in STORAGE_MARKERS.items():
            if marker in text:
                return code if code is not None else _file_system_errno(folder)
    return None


def _file_system_errno(folder: Path) -> int:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    stat = os.statvfs(existing)
    if stat.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if stat.f_bavail * stat.f_frsize < 16 << 20:  # under 16 MiB left
        return errno.ENOSPC
    return errno.EIO


def storage_message(folder: Path, code: int, before_start: bool = False) -> str:
    reason = STORAGE_ERRNOS.get(code, os.strerror(code))
    if before_start:
        outcome = "Nothing was run and nothing was changed."
    else:
        outcome = ("The run stopped; the warehouse keeps everything committed so far, and the exports, "
                   "serving.duckdb and the brief keep the last complete run.")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "Point --home (or SALESALIGN_HOME) at a folder this user can write."
    else:
        fix = "Free some space (or use a --home on a bigger disk) and run again: it resumes safely."
    return f"salesalign run: cannot write to {folder}: {reason}. {outcome} {fix}"


def error_texts(exc: BaseException) -> list[str]:
    texts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            texts.append(os.strerror(exc.errno))
        texts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return texts

"""Publishing BI outputs so readers always see one complete run's output.

What readers see is always one complete run's output. The BI outputs of a run are written into a
staging folder of their own (`$SALESALIGN_HOME/.publish/<run id>/`: `exports/` with its manifest,
and `serving.duckdb`); only when all of them are complete do they go live, `exports/` by an atomic
exchange of the two folders and `serving.duckdb` by an atomic rename. A run that dies before that
(killed, disk full) leaves the previous exports and snapshot exactly as they were; what it staged is
removed by the next publish (`remove_leftovers`). The two go live one after the other: a reader
comparing them in the instant between may see the new exports beside the old snapshot, each whole.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from pathlib import Path

from salesalign.publish.exports import export_tables, write_serving_snapshot

STAGING = ".publish"  # under SALESALIGN_HOME: one folder per publishing run, until it goes live


def remove_leftovers(home: Path) -> list[Path]:
    """Remove what publishing runs that died (SIGKILL, disk full) left: staged outputs and the
    temporary files written beside their targets. Publish steps run one at a time (the warehouse
    pool), so nothing else is writing these while a publish step calls this."""
    found = [*(home / STAGING).glob("*"), *home.glob(".serving.duckdb.*.tmp*")]
    for folder, pattern in (("exports", "**/.*.tmp"), ("reports", ".*.tmp"), ("docs", ".*.tmp")):
        found += (home / folder).glob(pattern)
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux `renameat2(RENAME_EXCHANGE)`); False if unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # a kernel or file system without the exchange: fall back to two renames
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def go_live(staged: Path, target: Path) -> None:
    """Put the folder `staged` in place of `target`; the previous `target` ends up at `staged`."""
    if not target.exists():
        staged.rename(target)
    elif not _exchange(staged, target):
        previous = staged.with_name(f"{staged.name}.previous")
        target.rename(previous)  # readers briefly see no folder (never a mixed one)
        staged.rename(target)
        previous.rename(staged)


def publish_bi_outputs(con, home: Path, run_id: str) -> list:
    """Write the exports and the serving snapshot aside, then put both in place (see the module doc)."""
    stage = home / STAGING / run_id
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        published = export_tables(con, stage, run_id)  # files named relative to `stage`, as to home
        snapshot = write_serving_snapshot(con, stage, run_id)
        go_live(stage / "exports", home / "exports")
        os.replace(snapshot, home / "serving.duckdb")
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # staged leftovers, or the previous exports
        if not any((home / STAGING).iterdir()):
            (home / STAGING).rmdir()
    return published

"""The processes this one started (Linux: found in /proc), and ending those still running."""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress
from pathlib import Path


def end_children(grace_seconds: float = 10.0) -> None:
    """End the processes this one started that are still running (Linux: found in /proc).

    When the run stops on an exception (the Dagster instance's disk filled up mid-step), dagster-dbt
    leaves its `dbt build` subprocess running: it would keep writing the warehouse after we exit and
    hold its lock against the next run.
    """
    if not Path("/proc/self/stat").exists():
        return
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 1.0)):
        pids = [pid for pid in _descendants() if not _is_resource_tracker(pid)]
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            for pid in pids:
                with suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)  # reap those that were our own children
            pids = [pid for pid in pids if (_proc_stat(pid) or ("Z",))[0] != "Z"]
        if not pids:
            return


def _is_resource_tracker(pid: int) -> bool:
    """Python's multiprocessing resource tracker ignores SIGTERM and exits by itself once we do: ending
    it would cost the whole grace period (10 s) on every run's teardown."""
    try:
        return b"multiprocessing.resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, from /proc; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def _descendants() -> list[int]:
    stats = {int(p.name): _proc_stat(int(p.name)) for p in Path("/proc").glob("[0-9]*")}
    parents = {pid: stat[1] for pid, stat in stats.items() if stat}
    found, frontier = [], {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier}
        found += sorted(frontier)
    return found

"""Progress lines for `salesalign run`: one per step as it starts and ends, plus what long steps report.

Listens to the run's Dagster events (in the process that executes the run), so the terminal shows
`[ 7/41]  31.2s  raw/activities: 102,182 rows landed ...` instead of the debug event stream.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import dagster as dg

QUIET_LOGGERS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # warnings, errors still shown


class RunProgress:
    """An event listener: `instance.add_event_listener(run_id, RunProgress(total_steps))`."""

    def __init__(self, total_steps: int, out: TextIO = sys.stdout):
        self.total = total_steps
        self.done = 0
        self.out = out
        self.started = time.monotonic()
        self.dbt_models = 0

    def _print(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(
            f"[{self.done:>{len(str(self.total))}}/{self.total}] {elapsed:6.1f}s  {text}",
            file=self.out,
            flush=True,
        )

    def __call__(self, entry) -> None:
        event = entry.dagster_event
        if event is None:
            # messages the steps log at INFO: rows landed, models fitted, files written
            if entry.level >= 20 and entry.user_message and entry.step_key:
                self._print(f"  {entry.user_message.splitlines()[0][:160]}")
            return
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            self._print(f"{event.step_key} ...")
        elif kind in (
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.STEP_SKIPPED,
        ):
            self.done += 1
            verb = {"STEP_SUCCESS": "done", "STEP_FAILURE": "FAILED", "STEP_SKIPPED": "skipped"}[kind.value]
            self._print(f"{event.step_key} {verb}")
        elif kind == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            self._print(f"{event.step_key} will be retried: {event.message or ''}")
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION and event.step_key == "dbt_models":
            self.dbt_models += 1
            if self.dbt_models % 10 == 0:
                self._print(
                    f"  dbt: {self.dbt_models} models built (last {event.asset_key.to_user_string()})"
                )

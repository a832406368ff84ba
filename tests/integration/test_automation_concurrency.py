"""Two overlapping runs on one SALESALIGN_HOME both succeed: their warehouse steps take turns (pool of 1).

Two processes start at once, each landing the small drop and running the GX checks on it (the checks
write the quarantine table), through the real code location and a Dagster instance configured by
`ensure_instance`. Without the pool, steps of the two runs open the DuckDB file at the same time and one
fails with "Could not set lock on file".
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
from fixtures.cli import cli_env
from fixtures.dagster_events import step_intervals

from orchestration.operations import WAREHOUSE_POOL

RUN = """
import sys
from pathlib import Path
import os
import dagster as dg
from orchestration.operations import ensure_instance, latest_partition
ensure_instance(Path(os.environ["DAGSTER_HOME"]))
from orchestration.definitions import defs

extract = [a for a in defs.assets if all(k.path[0] in ("raw", "extract") for k in a.keys)]
checks = [c for c in defs.asset_checks if all(k.asset_key.path[0] == "raw" for k in c.check_keys)]
with dg.DagsterInstance.get() as instance:
    result = dg.materialize([*extract, *checks], instance=instance, resources=defs.resources,
                            tags={"test/run": sys.argv[1]}, partition_key=latest_partition(),
                            raise_on_error=False)
print("RUN", result.run_id, "SUCCESS" if result.success else "FAILED")
sys.exit(0 if result.success else 1)
"""


def test_two_overlapping_runs_take_turns_on_the_warehouse(tmp_path, small_drop):
    home = tmp_path / "home"
    env = {
        **cli_env(),
        "SALESALIGN_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "SALESALIGN_SOURCE": "files",
        "SALESALIGN_SOURCE_PATH": str(small_drop),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RUN, name],
            env=env,
            cwd=Path(__file__).parents[2],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-2000:] + err[-4000:]
        assert "Could not set lock" not in err
    run_ids = [line.split()[1] for out, _ in outputs for line in out.splitlines() if line.startswith("RUN ")]
    assert len(run_ids) == 2

    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        a, b = (step_intervals(instance, r) for r in run_ids)
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots == []
    # the runs overlapped in time ...
    assert min(s for s, _, _ in a) < max(e for _, e, _ in b) and min(s for s, _, _ in b) < max(
        e for _, e, _ in a
    )
    # ... but no step of one ran while a step of the other was running
    for s1, e1, k1 in a:
        for s2, e2, k2 in b:
            assert e1 <= s2 or e2 <= s1, f"{k1} [{s1}, {e1}] overlaps {k2} [{s2}, {e2}]"
    # the second landing of the same drop added nothing (idempotent), the checks ran in both runs
    assert (
        sum(k.endswith("great_expectations") for _, _, k in a)
        == sum(k.endswith("great_expectations") for _, _, k in b)
        > 10
    )

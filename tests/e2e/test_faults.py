"""Faults: `salesalign run` killed with SIGKILL in every phase, overlapping reruns, a full disk and a
read-only SALESALIGN_HOME, all on real processes, real DuckDB files and a real dbt build.

The world: the tiny demo company as a file drop whose `activities` and `invoices` arrive as two files,
the second a day later. Home A ran the first day (the last good run). Then the second file arrives and

- R (a copy of A) runs once, uninterrupted: the reference;
- F (another copy) is killed with SIGKILL (the whole process group, dbt included) while landing,
  during `dbt build`, in an analytics asset and while publishing, each rerun killed in the next
  phase; then two runs start at once. Both must succeed, take turns, and leave F equal to R;
- G (another copy, on a tmpfs we can fill and make read-only) runs on a full disk, then on a
  read-only file system: a clear error each time, nothing corrupted (the warehouse opens, keeps every
  load of day one, checkpoints; readers still see day one).

The phase to kill in is found by reading the run's progress lines (and, for publishing, the files the
step stages), never by sleeping. Between kills the checks are those a reader of the home would make:
the warehouse opens, raw has no duplicate and no partial load, and the exports and serving snapshot
are exactly the last good run's (manifest, every file read back, checksums).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from fixtures.checksums import LOAD_METADATA, published_state, table_checksums
from fixtures.cli import SALESALIGN, cli_env
from fixtures.dagster_events import step_intervals

from orchestration.operations import WAREHOUSE_POOL
from salesalign import contract

pytestmark = [pytest.mark.slow, pytest.mark.faults]  # `make test-faults`
SECOND_DAY = {"activities": "started_at", "invoices": "invoice_date"}  # tables with a file per day


# --- the drop ------------------------------------------------------------------------------------

def make_drop(tmp: Path) -> tuple[Path, dict[str, Path]]:
    """The tiny demo as a drop whose SECOND_DAY tables hold only their first 70% (by date); returns the
    drop and, per such table, the file with the rest (moved into the drop when day two comes)."""
    from salesalign import demo

    generated, drop, later = tmp / "generated", tmp / "drop", tmp / "day2"
    demo.generate("tiny", 42, generated)
    drop.mkdir()
    later.mkdir()
    rest = {}
    with duckdb.connect() as con:
        for table in contract.TABLE_NAMES:
            src = generated / f"{table}.parquet"
            if table not in SECOND_DAY:
                shutil.copy(src, drop / src.name)
                continue
            col = SECOND_DAY[table]
            cutoff = con.execute(f"SELECT quantile_disc({col}, 0.7) FROM '{src}'").fetchone()[0]
            (drop / table).mkdir()
            for path, op in ((drop / table / "1.parquet", "<="), (later / f"{table}.parquet", ">")):
                con.execute(f"COPY (SELECT * FROM '{src}' WHERE {col} {op} ?) TO '{path}' (FORMAT parquet)",
                            [cutoff])
            rest[table] = later / f"{table}.parquet"
    return drop, rest


def drop_rows(drop: Path) -> dict[str, int]:
    """Rows per contract table in the drop's files: what raw must hold, no more and no less."""
    with duckdb.connect() as con:
        return {
            t: sum(con.execute(f"SELECT count(*) FROM '{b.path}'").fetchone()[0]
                   for b in _batches(drop, t))
            for t in contract.TABLE_NAMES
        }


def _batches(drop: Path, table: str):
    from salesalign.extract.sources import FileDropSource

    return FileDropSource(drop).batches(table)


# --- a `salesalign run` we can watch and kill -----------------------------------------------------

class Run:
    """`salesalign run --source files` as a subprocess in a session of its own (so SIGKILL to its
    process group takes dbt with it), its output read line by line as it comes."""

    def __init__(self, home: Path, drop: Path):
        self.home = home
        self.proc = subprocess.Popen(
            [str(SALESALIGN), "run", "--home", str(home), "--source", "files", "--path", str(drop)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), start_new_session=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 900) -> str:
        """The first progress line matching `pattern`; fails if the run ends first."""
        regex, seen = re.compile(pattern), 0
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.out[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.out)
                if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                    raise AssertionError(f"run ended before /{pattern}/:\n{self.text()[-4000:]}")
                assert time.monotonic() < deadline, f"no /{pattern}/ within {timeout} s"
                self._changed.wait(0.5)

    @property
    def run_id(self) -> str:
        first = self.wait_for(r"^salesalign run \S+ \(partition")
        return first.split()[2]

    def kill(self) -> None:
        """SIGKILL the whole process group and wait until none of it is left."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while True:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            assert time.monotonic() < deadline, "processes of the killed run are still alive"
            time.sleep(0.1)

    def finish(self, timeout: float = 900) -> int:
        self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=30)
        return self.proc.returncode

    def text(self) -> str:
        return "\n".join(self.out) + "\n--- stderr ---\n" + "\n".join(self.err)


def run_to_end(home: Path, drop: Path) -> Run:
    run = Run(home, drop)
    assert run.finish() == 0, run.text()[-6000:]
    return run


# --- what a reader of the home checks -------------------------------------------------------------

def raw_faults(home: Path) -> dict[str, list]:
    """Duplicates and partial loads in raw: a source row landed twice, a load whose rows in raw do not
    match its entry in raw._loads (or rows without an entry), a file logged twice for a table."""
    faults = {"duplicate_rows": [], "partial_loads": [], "files_logged_twice": []}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        for t in contract.TABLE_NAMES:
            faults["duplicate_rows"] += con.execute(
                f"SELECT '{t}', _source_file, _source_row, count(*) FROM raw.{t} "
                "GROUP BY ALL HAVING count(*) > 1 LIMIT 5"
            ).fetchall()
            faults["partial_loads"] += con.execute(
                f"""SELECT '{t}', coalesce(l.load_id, r._load_id), l.rows, r.n
                    FROM (SELECT _load_id, count(*) AS n FROM raw.{t} GROUP BY 1) r
                    FULL JOIN (SELECT * FROM raw._loads WHERE table_name = '{t}' AND rows > 0) l
                      ON l.load_id = r._load_id
                    WHERE l.rows IS DISTINCT FROM r.n"""
            ).fetchall()
        faults["files_logged_twice"] = con.execute(
            "SELECT table_name, file_sha256, count(*) FROM raw._loads GROUP BY ALL HAVING count(*) > 1"
        ).fetchall()
    return faults


def raw_rows(home: Path) -> dict[str, int]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0] for t in contract.TABLE_NAMES}


def exported_files(home: Path) -> set[str]:
    """Every file under exports/ (hidden ones too), relative to the home."""
    return {str(p.relative_to(home)) for p in (home / "exports").rglob("*") if p.is_file()}


def manifest_files(home: Path) -> set[str]:
    manifest = json.loads((home / "exports" / "manifest.json").read_text())
    files = {"exports/manifest.json"}
    for t in manifest["tables"]:
        files |= {t["file"], *([t["csv"]] if t.get("csv") else [])}
    return files


def assert_readers_see(home: Path, good: dict) -> None:
    """The exports and serving snapshot are exactly the last good run's, with nothing beside them."""
    assert published_state(home) == good
    assert exported_files(home) == manifest_files(home)  # no half-written or stray file


def assert_raw_clean(home: Path) -> None:
    assert raw_faults(home) == {"duplicate_rows": [], "partial_loads": [], "files_logged_twice": []}


# --- the world -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Home A after the first day's run (what readers see then: `day_one`), and the drop with day two
    arrived."""
    tmp = tmp_path_factory.mktemp("faults")
    drop, rest = make_drop(tmp)
    a = tmp / "A"
    run_to_end(a, drop)
    day_one = {"published": published_state(a), "raw_rows": raw_rows(a), "loads": _loads(a)}
    for table, path in rest.items():
        shutil.move(path, drop / table / "2.parquet")
    return {"tmp": tmp, "drop": drop, "A": a, "day_one": day_one}


@pytest.fixture(scope="module")
def reference(world) -> Path:
    """R: a copy of A that ran day two once, uninterrupted."""
    r = world["tmp"] / "R"
    shutil.copytree(world["A"], r)
    run_to_end(r, world["drop"])
    return r


def _loads(home: Path) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("SELECT load_id, table_name, rows FROM raw._loads ORDER BY 1").fetchall()


def test_the_world_has_a_second_day_that_changes_what_readers_see(world, reference):
    """The premise of the checks below: day two adds rows and changes published tables, so a reader
    seeing a half-published day two would be noticed."""
    day_one, r = world["day_one"], reference
    expected = drop_rows(world["drop"])
    assert raw_rows(r) == expected  # nothing lost, nothing duplicated in the reference
    assert all(raw_rows(r)[t] > day_one["raw_rows"][t] > 0 for t in SECOND_DAY)
    day_two = published_state(r)
    before = day_one["published"]["exports"]
    changed = [t for t in day_two["exports"] if day_two["exports"][t] != before.get(t)]
    assert "marts.fct_deal_margin" in changed and len(changed) >= 10, changed
    assert_raw_clean(r)


# --- SIGKILL in every phase, then two runs at once ---------------------------------------------------

def kill_while_publishing(run: Run) -> None:
    """Kill once the bi_outputs step has staged every export (its manifest is written) and is building
    the serving snapshot: the latest moment before anything goes live."""
    run.wait_for(r"  publish__bi_outputs \.\.\.$")
    staged = run.home / ".publish" / run.run_id / "exports" / "manifest.json"
    deadline = time.monotonic() + 300
    while not staged.exists():
        assert not any(re.search(r"publish__bi_outputs (done|FAILED)", line) for line in run.out), (
            "the step finished before it was seen staging its outputs")
        assert time.monotonic() < deadline
        time.sleep(0.002)
    run.kill()


PHASES = {
    # phase: how to find it in the progress output (after the step names in orchestration/)
    "landing": lambda run: run.wait_for(r"  raw__invoices \.\.\.$"),  # activities' day two landed
    "dbt build": lambda run: run.wait_for(r"dbt: 10 models built"),
    "analytics": lambda run: run.wait_for(r"  rep_variance \.\.\.$"),  # practice effects refitted
    "publishing": kill_while_publishing,
}


def test_sigkill_in_every_phase_then_two_overlapping_reruns_equal_an_uninterrupted_run(world, reference):
    f = world["tmp"] / "F"
    shutil.copytree(world["A"], f)
    good = world["day_one"]["published"]
    killed = []
    for phase, find in PHASES.items():
        run = Run(f, world["drop"])
        find(run)
        if run.proc.poll() is None:
            run.kill()
        assert run.proc.returncode == -signal.SIGKILL, f"{phase}: not killed\n{run.text()[-3000:]}"
        killed.append(run.run_id)
        # what a reader finds while the pipeline lies dead
        assert_raw_clean(f)
        assert_readers_see(f, good)
        assert table_checksums(f / "warehouse.duckdb")  # every table opens and reads

    # two runs at once: one frees the killed runs' slots, they take turns, both succeed
    runs = [Run(f, world["drop"]) for _ in range(2)]
    codes = [run.finish() for run in runs]
    assert codes == [0, 0], "\n\n".join(run.text()[-4000:] for run in runs)
    assert any("released the warehouse slot of run" in line for run in runs for line in run.out)
    with dg.DagsterInstance.from_config(str(f / "dagster")) as instance:
        first, second = (step_intervals(instance, run.run_id) for run in runs)
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots == []
        statuses = {run_id: instance.get_run_by_id(run_id).status for run_id in killed}
        assert not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    assert set(statuses.values()) == {dg.DagsterRunStatus.FAILURE}  # the killed runs are marked failed
    for s1, e1, k1 in first:
        for s2, e2, k2 in second:
            assert e1 <= s2 or e2 <= s1, f"{k1} [{s1}, {e1}] overlaps {k2} [{s2}, {e2}]"

    # the result: as if nothing had happened
    assert raw_rows(f) == drop_rows(world["drop"])  # no row lost, none duplicated
    assert_raw_clean(f)
    r = reference
    assert table_checksums(f / "warehouse.duckdb", exclude=LOAD_METADATA) == table_checksums(
        r / "warehouse.duckdb", exclude=LOAD_METADATA)
    got, expected = published_state(f, LOAD_METADATA), published_state(r, LOAD_METADATA)
    assert got["run_id"] in {run.run_id for run in runs}
    assert (got["exports"], got["serving"]) == (expected["exports"], expected["serving"])
    assert exported_files(f) == manifest_files(f)
    assert not list(f.glob(".publish")) and not [p for p in f.rglob("*.tmp") if "dagster" not in p.parts]


# --- a full disk, a read-only home ---------------------------------------------------------------------

@contextmanager
def tmpfs(path: Path, size_mb: int):
    """A tmpfs mounted at `path` (root only: mounting needs CAP_SYS_ADMIN)."""
    path.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("simulating a full or read-only disk mounts a tmpfs, which needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def used_kb(path: Path) -> int:
    stat = os.statvfs(path)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize // 1024


def test_full_disk_then_read_only_home_fail_clearly_and_corrupt_nothing(world):
    good = world["day_one"]["published"]
    with tmpfs(world["tmp"] / "fs", 1024) as fs:
        g = fs / "home"
        shutil.copytree(world["A"], g)

        # the disk fills up halfway through the run: 2 MiB left, day two needs more
        remount(fs, f"size={used_kb(fs) + 2048}k")
        full = Run(g, world["drop"])
        assert full.finish() != 0, full.text()[-3000:]
        (world["tmp"] / "full-disk-run.txt").write_text(full.text())  # which write failed, for the record
        stderr = "\n".join(full.err)
        assert f"salesalign run: cannot write to {g}: no space left on the device" in stderr, stderr[-3000:]
        assert "Traceback" not in stderr
        remount(fs, "size=1024m")  # space again: what did the failed run leave?
        assert_raw_clean(g)
        with duckdb.connect(str(g / "warehouse.duckdb"), read_only=True) as con:
            loads = con.execute("SELECT load_id, table_name, rows FROM raw._loads ORDER BY 1").fetchall()
        assert set(world["day_one"]["loads"]) <= set(loads)  # every load of day one is still there
        assert_readers_see(g, good)
        after_full = table_checksums(g / "warehouse.duckdb")

        # a read-only SALESALIGN_HOME
        remount(fs, "ro")
        try:
            ro = Run(g, world["drop"])
            assert ro.finish() != 0, ro.text()[-3000:]
        finally:
            remount(fs, "rw")
        stderr = "\n".join(ro.err)
        assert f"salesalign run: cannot write to {g}: it is on a read-only file system" in stderr, stderr
        assert "Traceback" not in stderr and "Nothing was run and nothing was changed" in stderr
        assert table_checksums(g / "warehouse.duckdb") == after_full
        assert_readers_see(g, good)

        # writable and with space again: the warehouse opens for writing (replaying its WAL) and
        # checkpoints; that the next run then finishes the day exactly is the kill test's final check
        with duckdb.connect(str(g / "warehouse.duckdb")) as con:
            con.execute("CHECKPOINT")
        assert table_checksums(g / "warehouse.duckdb") == after_full
        assert not (g / "warehouse.duckdb.wal").exists()

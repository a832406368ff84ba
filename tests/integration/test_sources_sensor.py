"""The file-drop sensor, evaluated with Dagster's sensor testing utilities, then a triggered landing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.extract import assets as extract_assets
from orchestration.extract import build_drop_sensor
from orchestration.operations import latest_partition
from orchestration.resources import SourceResource, WarehouseResource
from salesalign.extract.drops import drop_status

MAVEN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "maven_crm"


def _repository(sensor, source, home: Path) -> dg.RepositoryDefinition:
    """A code location with the sensor and its job (the sensor's run requests name a day of the job)."""
    job = dg.define_asset_job(sensor.job_name, selection=dg.AssetSelection.assets(*extract_assets))
    return dg.Definitions(
        assets=extract_assets, jobs=[job], sensors=[sensor],
        resources={"source": source, "warehouse": WarehouseResource(home=str(home))},
    ).get_repository_def()


def _evaluate(sensor, repository, cursor=None):
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(cursor=cursor, instance=instance, repository_def=repository)
        return sensor.evaluate_tick(context)


def _drop(root: Path, name: str, small_drop: Path) -> Path:
    drop = root / name
    shutil.copytree(small_drop, drop, ignore=shutil.ignore_patterns("truth.json"))
    return drop


def test_sensor_launches_each_complete_drop_once(tmp_path, small_drop):
    watch = tmp_path / "incoming"
    watch.mkdir()
    source = SourceResource(
        kind="demo", staging_dir=str(tmp_path / "staging"), demo_dir=str(tmp_path / "demo")
    )
    sensor = build_drop_sensor("salesalign_main", watch, source)
    repository = _repository(sensor, source, tmp_path)

    first = _drop(watch, "2025-06-01", small_drop)  # copied, but no marker yet: half-copied for all we know
    result = _evaluate(sensor, repository)
    assert (
        not result.run_requests
        and "2025-06-01: no _SUCCESS marker or manifest.json yet" in result.skip_message
    )

    (first / "_SUCCESS").write_text("")
    result = _evaluate(sensor, repository)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.partition_key == latest_partition()  # extraction is daily: a drop lands on the newest day
    config = request.run_config["resources"]["source"]["config"]
    assert config["kind"] == "files" and config["path"] == str(first.resolve())
    assert config["staging_dir"] == str(tmp_path / "staging")  # the rest of the resource is kept

    # the next tick, with the cursor, launches nothing; a new drop with a manifest is verified first
    again = _evaluate(sensor, repository, result.cursor)
    assert not again.run_requests
    second = _drop(watch, "2025-06-02", small_drop)
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in second.iterdir()
    }
    (second / "manifest.json").write_text(json.dumps({"files": {**files, "late.csv": {"bytes": 10}}}))
    assert drop_status(second) == (False, "late.csv listed in manifest.json is missing")
    assert not _evaluate(sensor, repository, result.cursor).run_requests
    (second / "manifest.json").write_text(json.dumps({"files": files}))
    third = _evaluate(sensor, repository, result.cursor)
    assert [r.tags["salesalign/drop"] for r in third.run_requests] == ["2025-06-02"]
    assert third.run_requests[0].tags["salesalign/drop_complete"].startswith("manifest.json verified")


def test_sensor_run_request_lands_the_drop_with_a_profile(tmp_path):
    if not MAVEN.is_dir():
        pytest.skip(f"the Maven CRM data set is not at {MAVEN}")
    watch = tmp_path / "incoming"
    drop = watch / "maven-2017-12-31"
    shutil.copytree(MAVEN, drop)
    (drop / "_SUCCESS").write_text("")
    source = SourceResource(kind="demo", staging_dir=str(tmp_path / "staging"))
    job = dg.define_asset_job(
        "land", selection=["extract/source_snapshot", "raw/opportunities", "raw/accounts"]
    )
    defs = dg.Definitions(
        assets=extract_assets,
        jobs=[job],
        sensors=[build_drop_sensor("land", watch, source, profile="maven")],
        resources={"source": source, "warehouse": WarehouseResource(home=str(tmp_path))},
    )
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        (request,) = defs.resolve_sensor_def("file_drop_sensor").evaluate_tick(context).run_requests
    assert request.partition_key == latest_partition()  # the sensor names the newest day itself
    for _ in range(2):  # the same export landed twice adds nothing the second time
        run = defs.resolve_job_def("land").execute_in_process(
            run_config=request.run_config, partition_key=request.partition_key
        )
        assert run.success
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.opportunities").fetchone()[0] == 8800
        assert con.execute("SELECT DISTINCT source FROM raw._loads").fetchall() == [
            (f"files+maven:{drop.resolve()}",)
        ]

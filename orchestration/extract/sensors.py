"""A file-drop sensor: a new *complete* drop in a watched folder launches the pipeline on it.

Each drop is a sub-folder of the watched folder (`incoming/2025-06-01/`). A drop is complete when it
holds a marker file `_SUCCESS` (written last by the sender), or a `manifest.json` listing every file
with its size and SHA-256 (`{"files": {"accounts.csv": {"bytes": 123, "sha256": "..."}}}`) and every
listed file matches. Half-copied drops are therefore never read. Each complete drop is launched once
(run key: drop name + marker/manifest content); the cursor remembers drops already launched.
The run lands the drop with the file-drop source (and the mapping profile, if one is configured).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg

MARKER = "_SUCCESS"
MANIFEST = "manifest.json"


def drop_status(drop: Path) -> tuple[bool, str]:
    """(complete?, why): a drop is complete with a marker, or a manifest whose files all match."""
    if (drop / MARKER).is_file():
        return True, f"{MARKER} marker"
    manifest = drop / MANIFEST
    if not manifest.is_file():
        return False, f"no {MARKER} marker or {MANIFEST} yet"
    try:
        files = json.loads(manifest.read_text())["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return False, f"{MANIFEST} is not readable yet ({exc})"
    for name, expected in files.items():
        path = drop / name
        if not path.is_file():
            return False, f"{name} listed in {MANIFEST} is missing"
        if "bytes" in expected and path.stat().st_size != expected["bytes"]:
            return False, f"{name} has {path.stat().st_size} of {expected['bytes']} bytes"
        if "sha256" in expected and hashlib.sha256(path.read_bytes()).hexdigest() != expected["sha256"]:
            return False, f"{name} does not match its SHA-256 in {MANIFEST}"
    return True, f"{MANIFEST} verified ({len(files)} files)"


def _signature(drop: Path) -> str:
    marker = drop / MARKER if (drop / MARKER).is_file() else drop / MANIFEST
    return hashlib.sha256(marker.read_bytes()).hexdigest()[:12]


def source_run_config(source: dg.ConfigurableResource, **overrides) -> dict:
    """Run config for the `source` resource: its bound values with `overrides` (run config replaces a
    resource's whole config). Secrets stay environment references (`{"env": NAME}`), never values."""
    config = {}
    for name in type(source).model_fields:
        value = getattr(source, name)
        if value is not None:
            config[name] = {"env": value.env_var_name} if isinstance(value, dg.EnvVar) else value
    config.update({k: v for k, v in overrides.items() if v is not None})
    return {"resources": {"source": {"config": config}}}


def build_drop_sensor(
    job_name: str,
    watch_dir: Path,
    source: dg.ConfigurableResource,
    profile: str | None = None,
    minimum_interval_seconds: int = 60,
) -> dg.SensorDefinition:
    """A sensor launching `job_name` on each new complete drop under `watch_dir` with the `source`
    resource pointed at the drop (file-drop source, `profile` if the drops are foreign exports)."""

    @dg.sensor(
        name="file_drop_sensor",
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        description=f"Launches the pipeline on each new complete drop in {watch_dir} "
        f"(a `{MARKER}` marker or a verified `{MANIFEST}`).",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def file_drop_sensor(context: dg.SensorEvaluationContext):
        if not watch_dir.is_dir():
            return dg.SkipReason(f"watched folder {watch_dir} does not exist")
        launched = set(json.loads(context.cursor)) if context.cursor else set()
        requests, waiting = [], []
        for drop in sorted(p for p in watch_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            complete, why = drop_status(drop)
            if not complete:
                waiting.append(f"{drop.name}: {why}")
                continue
            key = f"{drop.name}:{_signature(drop)}"
            if key in launched:
                continue
            launched.add(key)
            requests.append(
                dg.RunRequest(
                    run_key=key,
                    run_config=source_run_config(
                        source, kind="files", path=str(drop.resolve()), profile=profile
                    ),
                    tags={"salesalign/drop": drop.name, "salesalign/drop_complete": why},
                )
            )
        if not requests:
            detail = f"; incomplete: {'; '.join(waiting)}" if waiting else ""
            return dg.SkipReason(f"no new complete drop in {watch_dir}{detail}")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(sorted(launched)))

    return file_drop_sensor


def drop_sensors(job_name: str, settings, source: dg.ConfigurableResource) -> list[dg.SensorDefinition]:
    """The file-drop sensor when `SALESALIGN_DROP_WATCH_DIR` is set (none otherwise)."""
    if settings.drop_watch_dir is None:
        return []
    return [build_drop_sensor(job_name, settings.drop_watch_dir, source, settings.profile)]

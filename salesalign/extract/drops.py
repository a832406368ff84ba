"""Complete drops in a watched folder (the file-drop sensor launches the pipeline on each one).

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


def drop_signature(drop: Path) -> str:
    """A short hash of what made the drop complete (its marker or manifest): the run key."""
    marker = drop / MARKER if (drop / MARKER).is_file() else drop / MANIFEST
    return hashlib.sha256(marker.read_bytes()).hexdigest()[:12]

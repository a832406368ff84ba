"""Shared fixtures: a small demo drop generated once per session and a warehouse with it landed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def small_drop(tmp_path_factory) -> Path:
    """The `small` demo company (seed 7) as a Parquet file drop with truth.json. Read-only: copy to modify."""
    from salesalign import demo

    out = tmp_path_factory.mktemp("small-drop")
    demo.generate("small", 7, out)
    return out


@pytest.fixture(scope="session")
def small_home(tmp_path_factory, small_drop) -> Path:
    """A SALESALIGN_HOME whose warehouse has the small drop landed in `raw.*` (read-only for tests)."""
    from integration.helpers_dbt import land_drop

    home = tmp_path_factory.mktemp("small-home")
    land_drop(home, small_drop)
    return home


@pytest.fixture
def copy_of(tmp_path):
    """Copy a folder into this test's tmp dir (to modify a session fixture safely)."""

    def _copy(src: Path, name: str = "copy") -> Path:
        dst = tmp_path / name
        shutil.copytree(src, dst)
        return dst

    return _copy


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> Path:
    """The Definitions load from dbt's manifest; `make test` prepares it, plain pytest too."""
    from salesalign.transform.dbt import ensure_manifest

    return ensure_manifest()


def _built_marts(home: Path, drop: Path) -> Path:
    """Land `drop` into `home` and `dbt build` the marts there."""
    from integration.helpers_dbt import land_drop, run_dbt

    land_drop(home, drop)
    run_dbt(home, "build")
    return home


@pytest.fixture(scope="session")
def small_marts_home(tmp_path_factory, small_drop) -> Path:
    """SALESALIGN_HOME with the small demo (seed 7) landed and the dbt marts built. Read-only."""
    return _built_marts(tmp_path_factory.mktemp("small-marts"), small_drop)


@pytest.fixture(scope="session")
def default_drop(tmp_path_factory) -> Path:
    """The `default` demo company (seed 42, as `make run`) with truth.json. Read-only."""
    from salesalign import demo

    out = tmp_path_factory.mktemp("default-drop")
    demo.generate("default", 42, out)
    return out


@pytest.fixture(scope="session")
def default_marts_home(tmp_path_factory, default_drop) -> Path:
    """SALESALIGN_HOME with the default demo landed and the dbt marts built (about a minute). Read-only."""
    return _built_marts(tmp_path_factory.mktemp("default-marts"), default_drop)

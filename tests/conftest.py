"""Shared fixtures: demo drops generated once per session, warehouses with them landed and built,
a fake CRM server, and PostgreSQL databases. Their helpers are in tests/fixtures/."""

from __future__ import annotations

import os
import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest
from fixtures.fake_crm import FakeCrm, serving
from fixtures.postgres_cluster import admin_server, scratch_database
from fixtures.warehouse import land_drop, run_dbt

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def _demo_drop(tmp_path_factory, scale: str, seed: int) -> Path:
    from salesalign import demo

    out = tmp_path_factory.mktemp(f"{scale}-drop")
    demo.generate(scale, seed, out)
    return out


@pytest.fixture(scope="session")
def tiny_drop(tmp_path_factory) -> Path:
    """The `tiny` demo company (seed 42) as a Parquet file drop with truth.json. Read-only."""
    return _demo_drop(tmp_path_factory, "tiny", 42)


@pytest.fixture(scope="session")
def small_drop(tmp_path_factory) -> Path:
    """The `small` demo company (seed 7) as a Parquet file drop with truth.json. Read-only: copy to modify."""
    return _demo_drop(tmp_path_factory, "small", 7)


@pytest.fixture(scope="session")
def default_drop(tmp_path_factory) -> Path:
    """The `default` demo company (seed 42, as `make run`) with truth.json. Read-only."""
    return _demo_drop(tmp_path_factory, "default", 42)


@pytest.fixture(scope="session")
def small_home(tmp_path_factory, small_drop) -> Path:
    """A SALESALIGN_HOME whose warehouse has the small drop landed in `raw.*` (read-only for tests)."""
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
    land_drop(home, drop)
    run_dbt(home, "build")
    return home


@pytest.fixture(scope="session")
def small_marts_home(tmp_path_factory, small_drop) -> Path:
    """SALESALIGN_HOME with the small demo (seed 7) landed and the dbt marts built. Read-only."""
    return _built_marts(tmp_path_factory.mktemp("small-marts"), small_drop)


@pytest.fixture(scope="session")
def tiny_marts_home(tmp_path_factory, tiny_drop) -> Path:
    """SALESALIGN_HOME with the tiny demo (seed 42) landed and the dbt marts built. Read-only."""
    return _built_marts(tmp_path_factory.mktemp("tiny-marts"), tiny_drop)


@pytest.fixture(scope="session")
def default_marts_home(tmp_path_factory, default_drop) -> Path:
    """SALESALIGN_HOME with the default demo landed and the dbt marts built (about a minute). Read-only."""
    return _built_marts(tmp_path_factory.mktemp("default-marts"), default_drop)


@pytest.fixture
def crm():
    """The fake CRM (Salesforce and HubSpot shapes) on a loopback port for one test, empty."""
    with serving(FakeCrm()) as state:
        yield state


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL admin URL: a reachable server or a throwaway local cluster; skips saying why otherwise."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(admin_server())
        except LookupError as exc:
            pytest.skip(str(exc))
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """An empty finance database for one test: a SQLite file, and a scratch PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'erp.sqlite'}"
        return
    with scratch_database(request.getfixturevalue("postgres_url")) as url:
        yield url

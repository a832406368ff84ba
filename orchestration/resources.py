"""Dagster resources, configured from the environment (see `Settings`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.extract.sources import DemoSource, FileDropSource, Source
from orchestration.settings import Settings


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file under SALESALIGN_HOME. One writer at a time (stack-notes)."""

    home: str

    @property
    def path(self) -> Path:
        return Path(self.home) / "warehouse.duckdb"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()


class SourceResource(dg.ConfigurableResource):
    """Where raw batches come from: the embedded demo company or a folder of files."""

    kind: str = "demo"
    path: str | None = None
    demo_dir: str = ""
    scale: str = "default"
    seed: int = 42

    def build(self) -> Source:
        if self.kind == "demo":
            return DemoSource(Path(self.demo_dir), self.scale, self.seed)
        if self.kind == "files":
            if not self.path:
                raise ValueError("source kind 'files' needs a path (SALESALIGN_SOURCE_PATH or --path)")
            return FileDropSource(Path(self.path), f"files:{self.path}")
        raise ValueError(f"unknown source kind {self.kind!r}")


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources every asset in the code location uses, from settings."""
    from orchestration.transform.project import dbt_resource

    # dbt runs as a subprocess and reads SALESALIGN_HOME from its environment (profiles.yml).
    os.environ["SALESALIGN_HOME"] = str(settings.home)
    return {
        "warehouse": WarehouseResource(home=str(settings.home)),
        "source": SourceResource(
            kind=settings.source,
            path=str(settings.source_path) if settings.source_path else None,
            demo_dir=str(settings.demo_dir),
            scale=settings.demo_scale,
            seed=settings.demo_seed,
        ),
        "dbt": dbt_resource(),
    }

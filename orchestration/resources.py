"""Dagster resources, configured from `Settings` (the environment and the command's options).

Their defaults are the settings' defaults, so a resource built without settings (tests) agrees with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from salesalign.extract.sources import DemoSource, FileDropSource, Source
from salesalign.settings import (
    API_KINDS,
    API_TOKEN_ENV,
    DEMO_CAUSAL_YML,
    DEMO_STRATEGY_YML,
    FINANCE_DB_URL_ENV,
    Settings,
)


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file under SALESALIGN_HOME. One writer at a time (docs/stack.md)."""

    home: str
    reporting_currency: str = Settings.reporting_currency  # the currency the marts convert every amount to

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


class AnalysisResource(dg.ConfigurableResource):
    """What the analyses assume, reviewed by people: the causal assumptions and the declared strategy."""

    # None: not declared for this source (the analyses that need it write a status row saying so)
    causal_yml: str | None = str(DEMO_CAUSAL_YML)
    strategy_yml: str | None = str(DEMO_STRATEGY_YML)


class SourceResource(dg.ConfigurableResource):
    """Where raw batches come from: the embedded demo company or a folder of files."""

    kind: str = Settings.source
    path: str | None = None
    profile: str | None = None  # a mapping profile (shipped name or YAML file) for a foreign export
    staging_dir: str = ""  # where mapped sources stage contract-shaped files
    warehouse_path: str = ""  # where incremental sources keep their watermarks (raw._watermarks)
    api_url: str | None = None  # salesforce | hubspot: the API base URL
    api_token: str | None = None  # salesforce | hubspot: set from dg.EnvVar, never logged
    finance_db_url: str | None = None  # a SQLAlchemy URL, set from dg.EnvVar (it holds the password)
    finance_db_profile: str | None = None  # the finance database mapping profile (name or YAML file)
    demo_dir: str = ""
    scale: str = Settings.demo_scale
    seed: int = Settings.demo_seed

    def build(self, through: date | None = None) -> Source:
        """The source; `through` (the last day of a backfilled partition window) leaves dated batches
        and records changed after that day for the runs of their own days. None: everything so far."""
        until = datetime.combine(through + timedelta(days=1), time(), UTC) if through else None
        crm = self._build_crm(through, until)
        if not self.finance_db_url:
            return crm
        from salesalign.extract.finance_db import FinanceDbExtractor
        from salesalign.extract.incremental import IncrementalSource
        from salesalign.extract.profiles import load_profile
        from salesalign.extract.sources import CombinedSource
        from salesalign.extract.watermarks import WatermarkStore

        if not self.finance_db_profile:
            raise ValueError("a finance database (SALESALIGN_FINANCE_DB_URL) needs a profile "
                             "(SALESALIGN_FINANCE_DB_PROFILE)")
        profile = load_profile(self.finance_db_profile)
        finance = IncrementalSource(
            FinanceDbExtractor(self.finance_db_url, profile.incremental), profile, Path(self.staging_dir),
            WatermarkStore(Path(self.warehouse_path)), f"finance_db+{profile.name}", until=until,
        )
        return CombinedSource([crm, finance])

    def _build_crm(self, through: date | None, until: datetime | None) -> Source:
        if self.kind in API_KINDS:
            from salesalign.extract import api
            from salesalign.extract.incremental import IncrementalSource
            from salesalign.extract.profiles import load_profile
            from salesalign.extract.watermarks import WatermarkStore

            if not self.api_url or not self.api_token:
                raise ValueError(f"source {self.kind!r} needs SALESALIGN_API_URL and SALESALIGN_API_TOKEN")
            client = api.HttpClient(self.api_url, self.api_token, token_env=API_TOKEN_ENV)
            extractor = api.SalesforceApi(client) if self.kind == "salesforce" else api.HubSpotApi(client)
            return IncrementalSource(
                extractor, load_profile(self.profile or self.kind), Path(self.staging_dir),
                WatermarkStore(Path(self.warehouse_path)), f"{self.kind}:{self.api_url}", until=until,
            )
        if self.kind == "demo":
            return DemoSource(Path(self.demo_dir), self.scale, self.seed, through=through)
        if self.kind == "files":
            if not self.path:
                raise ValueError("source kind 'files' needs a path (SALESALIGN_SOURCE_PATH or --path)")
            if self.profile:
                from salesalign.extract.mapped import MappedFileSource
                from salesalign.extract.profiles import load_profile

                # a foreign export is one snapshot: it belongs to every day (no `through`)
                return MappedFileSource(Path(self.path), load_profile(self.profile), Path(self.staging_dir))
            return FileDropSource(Path(self.path), f"files:{self.path}", through)
        raise ValueError(f"unknown source kind {self.kind!r}")


def source_resource(settings: Settings) -> SourceResource:
    """Where raw batches come from, from settings. Secrets stay references to the environment:
    Dagster reads them at run time and never shows their values."""
    return SourceResource(
        kind=settings.source,
        path=str(settings.source_path) if settings.source_path else None,
        profile=settings.profile,
        staging_dir=str(settings.staging_dir),
        warehouse_path=str(settings.warehouse_path),
        api_url=settings.api_url,
        api_token=dg.EnvVar(API_TOKEN_ENV) if settings.source in API_KINDS else None,
        finance_db_url=dg.EnvVar(FINANCE_DB_URL_ENV) if settings.finance_db_profile else None,
        finance_db_profile=settings.finance_db_profile,
        demo_dir=str(settings.demo_dir),
        scale=settings.demo_scale,
        seed=settings.demo_seed,
    )


def analysis_resource(settings: Settings) -> AnalysisResource:
    """The analyses' causal.yml and strategy.yml for the source: given, or the demo company's for the
    demo, or none for another source."""
    causal, strategy = settings.analysis_files()
    return AnalysisResource(
        causal_yml=str(causal) if causal else None, strategy_yml=str(strategy) if strategy else None
    )


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources every asset in the code location uses, from settings."""
    from orchestration.transform import dbt_resource

    return {
        "warehouse": WarehouseResource(
            home=str(settings.home), reporting_currency=settings.reporting_currency
        ),
        "source": source_resource(settings),
        "analysis": analysis_resource(settings),
        "dbt": dbt_resource(),
    }

"""Settings from the environment, with the defaults a fresh clone needs.

One place reads the environment; everything else receives a `Settings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SOURCE_KINDS = ("demo", "files", "salesforce", "hubspot")


@dataclass(frozen=True)
class Settings:
    home: Path  # SALESALIGN_HOME: everything the pipeline writes lives under it
    source: str = "demo"  # SALESALIGN_SOURCE: demo | files
    source_path: Path | None = None  # SALESALIGN_SOURCE_PATH: the file drop for source=files
    profile: str | None = None  # SALESALIGN_PROFILE: mapping profile (name or YAML file) for source=files
    api_url: str | None = None  # SALESALIGN_API_URL: base URL of the CRM API for source=salesforce|hubspot
    finance_db_profile: str | None = None  # SALESALIGN_FINANCE_DB_PROFILE: finance DB mapping (URL: env var)
    drop_watch_dir: Path | None = None  # SALESALIGN_DROP_WATCH_DIR: sub-folders are drops (file-drop sensor)
    demo_scale: str = "default"  # SALESALIGN_DEMO_SCALE
    demo_seed: int = 42  # SALESALIGN_DEMO_SEED
    reporting_currency: str = "USD"  # SALESALIGN_REPORTING_CURRENCY

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        source = env.get("SALESALIGN_SOURCE", "demo")
        if source not in SOURCE_KINDS:
            raise ValueError(f"SALESALIGN_SOURCE={source!r}: expected one of {', '.join(SOURCE_KINDS)}")
        path = env.get("SALESALIGN_SOURCE_PATH")
        return cls(
            home=Path(env.get("SALESALIGN_HOME", "data")).resolve(),
            source=source,
            source_path=Path(path).resolve() if path else None,
            profile=env.get("SALESALIGN_PROFILE") or None,
            api_url=env.get("SALESALIGN_API_URL") or None,
            finance_db_profile=env.get("SALESALIGN_FINANCE_DB_PROFILE") or None,
            drop_watch_dir=Path(watch).resolve() if (watch := env.get("SALESALIGN_DROP_WATCH_DIR")) else None,
            demo_scale=env.get("SALESALIGN_DEMO_SCALE", "default"),
            demo_seed=int(env.get("SALESALIGN_DEMO_SEED", "42")),
            reporting_currency=env.get("SALESALIGN_REPORTING_CURRENCY", "USD").upper(),
        )

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def staging_dir(self) -> Path:
        """Where mapped sources (profiles, APIs, finance DB) stage contract-shaped files for landing."""
        return self.home / "staging_drops"

    @property
    def demo_dir(self) -> Path:
        """Where `--source demo` keeps the generated drop and its truth.json."""
        return self.home / "demo" / f"{self.demo_scale}-seed{self.demo_seed}"

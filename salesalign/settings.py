"""Settings: the one place that reads the environment. Everything else receives a `Settings`.

Every field has a documented environment variable and an effect (tests/unit/test_settings.py). The
`salesalign` command builds its settings from the environment and then from its options
(`Settings.from_env().replace(...)`); it never edits the environment.

Two secrets are not fields: the CRM API token and the finance database URL (it holds a password).
The pipeline names them (`API_TOKEN_ENV`, `FINANCE_DB_URL_ENV`) and Dagster reads them when a run
needs them, so their values never appear in run configuration, logs or the UI.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE_KINDS = ("demo", "files", "salesforce", "hubspot")
API_KINDS = ("salesforce", "hubspot")
API_TOKEN_ENV = "SALESALIGN_API_TOKEN"
FINANCE_DB_URL_ENV = "SALESALIGN_FINANCE_DB_URL"
# Third-party libraries that phone home or draw progress bars unless told not to (in this process
# and the dbt processes it starts).
QUIET_THIRD_PARTY = {"GX_ANALYTICS_ENABLED": "false", "TQDM_DISABLE": "1", "DO_NOT_TRACK": "1"}


@dataclass(frozen=True)
class Settings:
    home: Path  # SALESALIGN_HOME (default ./data): everything a run writes lives under it
    dagster_home: Path  # DAGSTER_HOME (default $SALESALIGN_HOME/dagster): run history, event logs
    source: str = "demo"  # SALESALIGN_SOURCE: demo | files | salesforce | hubspot
    source_path: Path | None = None  # SALESALIGN_SOURCE_PATH: the file drop for source=files
    profile: str | None = None  # SALESALIGN_PROFILE: mapping profile (shipped name or YAML file)
    api_url: str | None = None  # SALESALIGN_API_URL: base URL of the CRM API for salesforce | hubspot
    finance_db_profile: str | None = None  # SALESALIGN_FINANCE_DB_PROFILE: finance DB mapping profile
    drop_watch_dir: Path | None = None  # SALESALIGN_DROP_WATCH_DIR: sub-folders are drops (sensor)
    demo_scale: str = "default"  # SALESALIGN_DEMO_SCALE: tiny | small | default | large
    demo_seed: int = 42  # SALESALIGN_DEMO_SEED
    reporting_currency: str = "USD"  # SALESALIGN_REPORTING_CURRENCY: the marts' and the brief's money
    partitions_start: str = "2023-01-01"  # SALESALIGN_PARTITIONS_START: first daily partition
    causal_yml: Path = REPO / "causal.yml"  # SALESALIGN_CAUSAL_YML: practices, outcomes, confounders
    strategy_yml: Path = REPO / "strategy.yml"  # SALESALIGN_STRATEGY_YML: the declared strategy

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env` (default: this process's environment), with the defaults above."""
        env = os.environ if env is None else env
        home = Path(env.get("SALESALIGN_HOME") or "data").resolve()
        return cls(
            home=home,
            dagster_home=_path(env.get("DAGSTER_HOME")) or home / "dagster",
            source=env.get("SALESALIGN_SOURCE") or "demo",
            source_path=_path(env.get("SALESALIGN_SOURCE_PATH")),
            profile=_profile(env.get("SALESALIGN_PROFILE")),
            api_url=env.get("SALESALIGN_API_URL") or None,
            finance_db_profile=_profile(env.get("SALESALIGN_FINANCE_DB_PROFILE")),
            drop_watch_dir=_path(env.get("SALESALIGN_DROP_WATCH_DIR")),
            demo_scale=env.get("SALESALIGN_DEMO_SCALE") or "default",
            demo_seed=int(env.get("SALESALIGN_DEMO_SEED") or 42),
            reporting_currency=(env.get("SALESALIGN_REPORTING_CURRENCY") or "USD").upper(),
            partitions_start=env.get("SALESALIGN_PARTITIONS_START") or "2023-01-01",
            causal_yml=_path(env.get("SALESALIGN_CAUSAL_YML")) or REPO / "causal.yml",
            strategy_yml=_path(env.get("SALESALIGN_STRATEGY_YML")) or REPO / "strategy.yml",
        ).checked()

    def replace(self, **changes) -> Settings:
        """These settings with some fields changed (options given on the command line). A new home
        moves the Dagster instance with it unless `dagster_home` is given too."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if "home" in changes:
            changes["home"] = Path(changes["home"]).resolve()
            if "dagster_home" not in changes and self.dagster_home == self.home / "dagster":
                changes["dagster_home"] = changes["home"] / "dagster"
        for name in ("source_path", "causal_yml", "strategy_yml", "drop_watch_dir", "dagster_home"):
            if name in changes:
                changes[name] = Path(changes[name]).resolve()
        for name in ("profile", "finance_db_profile"):
            if name in changes:
                changes[name] = _profile(changes[name])
        if "reporting_currency" in changes:
            changes["reporting_currency"] = changes["reporting_currency"].upper()
        return dataclasses.replace(self, **changes).checked()

    def checked(self) -> Settings:
        """These settings, or a ValueError naming the variable that holds a value outside its range."""
        if self.source not in SOURCE_KINDS:
            raise ValueError(f"SALESALIGN_SOURCE={self.source!r}: expected one of {', '.join(SOURCE_KINDS)}")
        currency = self.reporting_currency
        if not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
            raise ValueError(f"SALESALIGN_REPORTING_CURRENCY={currency!r}: expected an ISO 4217 code, "
                             "e.g. USD or EUR")
        try:
            date.fromisoformat(self.partitions_start)
        except ValueError:
            raise ValueError(f"SALESALIGN_PARTITIONS_START={self.partitions_start!r}: expected a date "
                             "YYYY-MM-DD") from None
        return self

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


def quiet_third_party() -> None:
    """Tell GX, tqdm and dbt (here and in the processes we start) not to send usage data or draw
    progress bars, unless the user chose otherwise."""
    for name, value in QUIET_THIRD_PARTY.items():
        os.environ.setdefault(name, value)


def _path(value: str | None) -> Path | None:
    return Path(value).resolve() if value else None


def _profile(value: str | None) -> str | None:
    """A shipped profile is a bare name (`salesforce`); anything with a suffix is a file, made absolute."""
    if not value:
        return None
    return value if not Path(value).suffix else str(Path(value).resolve())

"""Settings: the one place that reads the environment. Everything else receives a `Settings`.

Every field is read from one documented environment variable (declared beside it, `variable()`)
and has an effect (tests/unit/test_settings.py). The `salesalign` command builds its settings from
the environment and then from its options (`Settings.from_env().replace(...)`); it never edits the
environment. Values from either go through the same parsing and checks, and a bad one fails with a
message naming its variable.

Two secrets are not fields: the CRM API token and the finance database URL (it holds a password).
The pipeline names them (`API_TOKEN_ENV`, `FINANCE_DB_URL_ENV`) and Dagster reads them when a run
needs them, so their values never appear in run configuration, logs or the UI.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SOURCE_KINDS = ("demo", "files", "salesforce", "hubspot")
API_KINDS = ("salesforce", "hubspot")
API_TOKEN_ENV = "SALESALIGN_API_TOKEN"
FINANCE_DB_URL_ENV = "SALESALIGN_FINANCE_DB_URL"
DEFAULT_HOME = Path("data")  # relative to the working directory
DEMO_CAUSAL_YML, DEMO_STRATEGY_YML = REPO / "causal.yml", REPO / "strategy.yml"  # the demo company's
# Third-party libraries that phone home or draw progress bars unless told not to (in this process
# and the dbt processes it starts).
QUIET_THIRD_PARTY = {"GX_ANALYTICS_ENABLED": "false", "TQDM_DISABLE": "1", "DO_NOT_TRACK": "1"}


def _path(value: str | Path) -> Path:
    return Path(value).resolve()


def _profile(value: str) -> str:
    """A shipped profile is a bare name (`salesforce`); anything with a suffix is a file, made absolute."""
    return value if not Path(value).suffix else str(Path(value).resolve())


def _source(value: str) -> str:
    if value not in SOURCE_KINDS:
        raise ValueError(f"expected one of {', '.join(SOURCE_KINDS)}")
    return value


def _demo_scale(value: str) -> str:
    from salesalign.demo.presets import PRESETS

    if value not in PRESETS:
        raise ValueError(f"expected one of {', '.join(PRESETS)}")
    return value


def _seed(value: str | int) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("expected an integer") from None


def _currency(value: str) -> str:
    code = value.strip().upper()
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise ValueError("expected an ISO 4217 code, e.g. USD or EUR")
    return code


def _day(value: str | date) -> str:
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError("expected a date YYYY-MM-DD") from None


def _yaml_file(value: str | Path) -> Path:
    path = Path(value).resolve()
    if not path.is_file():
        raise ValueError(f"no such file {path}")
    return path


def variable(name: str, parse: Callable[[Any], Any] = str, default: Any = dataclasses.MISSING):
    """A settings field read from the environment variable `name`; `parse` turns a value (the
    variable's text, or a command-line option) into the field's, raising ValueError if it is bad."""
    return field(default=default, metadata={"variable": name, "parse": parse})


@dataclass(frozen=True)
class Settings:
    """What a run is configured with: each field, its variable, how a value is parsed, its default."""

    # Everything a run writes lives under it (default ./data).
    home: Path = variable("SALESALIGN_HOME", _path)
    # The Dagster instance: run history, event logs (default $SALESALIGN_HOME/dagster).
    dagster_home: Path = variable("DAGSTER_HOME", _path)
    source: str = variable("SALESALIGN_SOURCE", _source, "demo")  # demo | files | salesforce | hubspot
    source_path: Path | None = variable("SALESALIGN_SOURCE_PATH", _path, None)  # the drop of source=files
    profile: str | None = variable("SALESALIGN_PROFILE", _profile, None)  # mapping profile: name or YAML
    api_url: str | None = variable("SALESALIGN_API_URL", str, None)  # CRM API base URL (salesforce, hubspot)
    finance_db_profile: str | None = variable("SALESALIGN_FINANCE_DB_PROFILE", _profile, None)  # its mapping
    drop_watch_dir: Path | None = variable("SALESALIGN_DROP_WATCH_DIR", _path, None)  # the sensor's drops
    demo_scale: str = variable("SALESALIGN_DEMO_SCALE", _demo_scale, "default")  # tiny|small|default|large
    demo_seed: int = variable("SALESALIGN_DEMO_SEED", _seed, 42)
    # The ISO code of every amount in the marts (dbt var `reporting_currency`), the exports and the brief.
    reporting_currency: str = variable("SALESALIGN_REPORTING_CURRENCY", _currency, "USD")
    partitions_start: str = variable("SALESALIGN_PARTITIONS_START", _day, "2023-01-01")  # the first day
    # The analyses' assumptions and the declared strategy of the source. Unset: the shipped files
    # (the demo company's) for source demo, none for other sources (`analysis_files`).
    causal_yml: Path | None = variable("SALESALIGN_CAUSAL_YML", _yaml_file, None)
    strategy_yml: Path | None = variable("SALESALIGN_STRATEGY_YML", _yaml_file, None)

    @classmethod
    def defaults(cls) -> Settings:
        """The settings of an empty environment: home ./data (absolute), the Dagster instance in it."""
        home = _path(DEFAULT_HOME)
        return cls(home=home, dagster_home=home / "dagster")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env` (default: this process's environment); an unset or empty variable
        keeps its field's default."""
        env = os.environ if env is None else env
        given = {name: env[var] for name, var in variables().items() if env.get(var)}
        return cls.defaults().replace(**given)

    def replace(self, **changes) -> Settings:
        """These settings with some fields changed (None: unchanged, as for an option not given on the
        command line). A new home moves the Dagster instance with it unless `dagster_home` is given
        too or was set apart from the home."""
        changes = {name: _parsed(name, value) for name, value in changes.items() if value is not None}
        moved = "home" in changes and "dagster_home" not in changes
        if moved and self.dagster_home == self.home / "dagster":
            changes["dagster_home"] = changes["home"] / "dagster"
        return dataclasses.replace(self, **changes)

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def staging_dir(self) -> Path:
        """Where mapped sources (profiles, APIs, finance DB) stage contract-shaped files for landing."""
        return self.home / "staging_drops"

    def analysis_files(self) -> tuple[Path | None, Path | None]:
        """(causal.yml, strategy.yml) the analyses use: the ones given, else the shipped demo
        company's for source demo; a foreign source has none unless given (the analyses say so)."""
        demo = self.source == "demo"
        return (
            self.causal_yml or (DEMO_CAUSAL_YML if demo else None),
            self.strategy_yml or (DEMO_STRATEGY_YML if demo else None),
        )

    @property
    def demo_dir(self) -> Path:
        """Where `--source demo` keeps the generated drop and its truth.json."""
        return self.home / "demo" / f"{self.demo_scale}-seed{self.demo_seed}"


def variables() -> dict[str, str]:
    """Field name -> the environment variable it is read from, in declaration order."""
    return {f.name: f.metadata["variable"] for f in dataclasses.fields(Settings)}


def _parsed(name: str, value: Any) -> Any:
    """`value` as field `name` holds it, or a ValueError naming the field's variable and the value."""
    meta = {f.name: f.metadata for f in dataclasses.fields(Settings)}.get(name)
    if meta is None:
        raise TypeError(f"Settings has no field {name!r}")
    try:
        return meta["parse"](value)
    except ValueError as exc:
        raise ValueError(f"{meta['variable']}={str(value)!r}: {exc}") from None


def quiet_third_party() -> None:
    """Tell GX, tqdm and dbt (here and in the processes we start) not to send usage data or draw
    progress bars, unless the user chose otherwise."""
    for name, value in QUIET_THIRD_PARTY.items():
        os.environ.setdefault(name, value)

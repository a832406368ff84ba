"""Settings: every field is read from its documented variable and has an effect on what runs; a bad
value fails naming its variable; the command's options override the environment; and only
salesalign/settings.py reads the environment."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml

from salesalign import cli
from salesalign.settings import FINANCE_DB_URL_ENV, REPO, Settings, variables

FIELDS = [f.name for f in dataclasses.fields(Settings)]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """A value other than the default for every variable (relative paths resolve from tmp_path)."""
    for name in ("causal.yml", "strategy.yml"):
        shutil.copy(REPO / name, tmp_path / f"my-{name}")
    return {
        "SALESALIGN_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "instance"),
        "SALESALIGN_SOURCE": "files",
        "SALESALIGN_SOURCE_PATH": "drops/2025-06",
        "SALESALIGN_PROFILE": "salesforce",
        "SALESALIGN_API_URL": "https://crm.example.com",
        "SALESALIGN_FINANCE_DB_PROFILE": "erp.yml",
        "SALESALIGN_DROP_WATCH_DIR": str(tmp_path / "incoming"),
        "SALESALIGN_DEMO_SCALE": "tiny",
        "SALESALIGN_DEMO_SEED": "7",
        "SALESALIGN_REPORTING_CURRENCY": "eur",
        "SALESALIGN_PARTITIONS_START": "2021-06-01",
        "SALESALIGN_CAUSAL_YML": str(tmp_path / "my-causal.yml"),
        "SALESALIGN_STRATEGY_YML": str(tmp_path / "my-strategy.yml"),
    }


@pytest.fixture
def settings(env, tmp_path, monkeypatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    return Settings.from_env(env)


def test_every_field_is_read_from_its_documented_variable(settings, env, tmp_path):
    assert list(variables()) == FIELDS and sorted(variables().values()) == sorted(env)
    assert settings == Settings(
        home=tmp_path / "home",
        dagster_home=tmp_path / "instance",
        source="files",
        source_path=tmp_path / "drops" / "2025-06",
        profile="salesforce",
        api_url="https://crm.example.com",
        finance_db_profile=str(tmp_path / "erp.yml"),  # a file: made absolute
        drop_watch_dir=tmp_path / "incoming",
        demo_scale="tiny",
        demo_seed=7,
        reporting_currency="EUR",
        partitions_start="2021-06-01",
        causal_yml=tmp_path / "my-causal.yml",
        strategy_yml=tmp_path / "my-strategy.yml",
    )


def test_an_empty_environment_gives_the_documented_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    defaults = Settings(home=tmp_path / "data", dagster_home=tmp_path / "data" / "dagster")
    assert Settings.from_env({}) == defaults == Settings.defaults()
    assert Settings.from_env(dict.fromkeys(variables().values(), "")) == defaults  # empty is unset
    assert (defaults.source, defaults.demo_scale, defaults.demo_seed) == ("demo", "default", 42)
    assert (defaults.reporting_currency, defaults.partitions_start) == ("USD", "2023-01-01")
    assert (defaults.causal_yml, defaults.strategy_yml) == (None, None)  # the source decides
    assert defaults.analysis_files() == (REPO / "causal.yml", REPO / "strategy.yml")  # the demo's
    assert defaults.source_path is defaults.profile is defaults.api_url is None
    assert defaults.finance_db_profile is defaults.drop_watch_dir is None


def test_from_env_reads_this_process_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SALESALIGN_HOME", str(tmp_path))
    monkeypatch.setenv("SALESALIGN_REPORTING_CURRENCY", "GBP")
    assert (Settings.from_env().home, Settings.from_env().reporting_currency) == (tmp_path, "GBP")


def test_every_field_has_an_effect_on_the_definitions_built_from_it(settings, tmp_path):
    from orchestration.definitions import build_definitions
    from orchestration.transform import dbt_build_args

    defs = build_definitions(settings)
    warehouse, source, analysis = (defs.resources[k] for k in ("warehouse", "source", "analysis"))
    # home and reporting_currency: the warehouse, and so the vars of every dbt build
    assert (warehouse.path, warehouse.reporting_currency) == (tmp_path / "home" / "warehouse.duckdb", "EUR")
    args = dbt_build_args(warehouse, None)
    assert json.loads(args[args.index("--vars") + 1]) == {
        "warehouse_path": str(tmp_path / "home" / "warehouse.duckdb"), "reporting_currency": "EUR",
    }
    # the source and what it needs: kind, drop, profile, API, finance database, demo preset and seed
    assert (source.kind, source.path) == ("files", str(tmp_path / "drops/2025-06"))
    assert (source.profile, source.api_url) == ("salesforce", "https://crm.example.com")
    assert source.finance_db_profile == str(tmp_path / "erp.yml")
    assert source.finance_db_url == dg.EnvVar(FINANCE_DB_URL_ENV)  # a reference, read at run time
    assert (source.scale, source.seed, source.demo_dir) == ("tiny", 7, str(tmp_path / "home/demo/tiny-seed7"))
    assert (source.staging_dir, source.warehouse_path) == (str(tmp_path / "home/staging_drops"),
                                                           str(warehouse.path))
    # the analyses' assumptions
    assert (analysis.causal_yml, analysis.strategy_yml) == (str(tmp_path / "my-causal.yml"),
                                                            str(tmp_path / "my-strategy.yml"))
    # the watched folder: a sensor; the first day: every daily asset's partitions
    sensor = next(s for s in defs.sensors if s.name == "file_drop_sensor")
    assert str(tmp_path / "incoming") in sensor.description
    graph = defs.resolve_asset_graph()
    daily = [k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None]
    assert {dg.AssetKey(["raw", "opportunities"]), dg.AssetKey(["marts", "fct_deal_margin"])} <= set(daily)
    assert {graph.get(k).partitions_def.start.date() for k in daily} == {date(2021, 6, 1)}


def test_the_defaults_have_their_effect_too(tmp_path):
    from orchestration.definitions import build_definitions

    defs = build_definitions(Settings.from_env({"SALESALIGN_HOME": str(tmp_path)}))
    assert "file_drop_sensor" not in [s.name for s in defs.sensors]  # no folder watched
    assert defs.resources["source"].finance_db_url is None  # no finance database
    assert defs.resources["warehouse"].reporting_currency == "USD"
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey(["raw", "opportunities"])).partitions_def.start.date() == date(2023, 1, 1)


def test_dagster_home_holds_the_instance_of_the_run(settings):
    from orchestration.run import run_instance

    with run_instance(settings) as instance:
        assert Path(instance.root_directory) == settings.dagster_home
    config = yaml.safe_load((settings.dagster_home / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1  # runs take turns on the warehouse
    assert not (settings.home / "dagster").exists()


@pytest.mark.parametrize(
    "variable, value, why",
    [
        ("SALESALIGN_SOURCE", "ftp", "expected one of demo, files, salesforce, hubspot"),
        ("SALESALIGN_DEMO_SCALE", "huge", "expected one of tiny, small, default, large"),
        ("SALESALIGN_DEMO_SEED", "forty-two", "expected an integer"),
        ("SALESALIGN_REPORTING_CURRENCY", "EURO", "expected an ISO 4217 code"),
        ("SALESALIGN_REPORTING_CURRENCY", "€", "expected an ISO 4217 code"),
        ("SALESALIGN_PARTITIONS_START", "2023-13-01", "expected a date YYYY-MM-DD"),
        ("SALESALIGN_CAUSAL_YML", "nowhere/causal.yml", "no such file"),
        ("SALESALIGN_STRATEGY_YML", "nowhere/strategy.yml", "no such file"),
    ],
)
def test_a_bad_value_fails_naming_its_variable(variable, value, why, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=re.escape(f"{variable}={value!r}: {why}")):
        Settings.from_env({variable: value})


def test_replace_sets_the_options_given_and_keeps_the_rest(settings, tmp_path):
    changed = settings.replace(reporting_currency="gbp", demo_seed=3, source=None, home=None)
    assert (changed.reporting_currency, changed.demo_seed, changed.source) == ("GBP", 3, "files")
    assert dataclasses.replace(changed, reporting_currency="EUR", demo_seed=7) == settings
    assert settings.reporting_currency == "EUR"  # settings are values: replace makes new ones
    # a new home moves the Dagster instance with it, unless the instance was set apart
    moved = Settings.from_env({"SALESALIGN_HOME": str(tmp_path / "a")}).replace(home=tmp_path / "b")
    assert (moved.home, moved.dagster_home) == (tmp_path / "b", tmp_path / "b" / "dagster")
    assert settings.replace(home="elsewhere").dagster_home == tmp_path / "instance"
    both = settings.replace(home="b", dagster_home="d")
    assert (both.home, both.dagster_home) == (tmp_path / "b", tmp_path / "d")
    with pytest.raises(ValueError, match="SALESALIGN_REPORTING_CURRENCY='dollars': expected an ISO"):
        settings.replace(reporting_currency="dollars")
    with pytest.raises(TypeError, match="no field 'currency'"):
        settings.replace(currency="EUR")


def test_salesalign_run_options_override_the_environment(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    parser = cli.build_parser()
    assert cli.run_settings(parser.parse_args(["run"])) == Settings.from_env(env)
    args = parser.parse_args([
        "run", "--home", "other", "--source", "demo", "--path", "drop", "--profile", "maven",
        "--scale", "small", "--seed", "11", "--currency", "aud",
    ])
    given = cli.run_settings(args)
    assert (given.home, given.dagster_home) == (tmp_path / "other", tmp_path / "instance")
    assert (given.source, given.source_path, given.profile) == ("demo", tmp_path / "drop", "maven")
    assert (given.demo_scale, given.demo_seed, given.reporting_currency) == ("small", 11, "AUD")


def test_salesalign_run_refuses_bad_settings_before_running(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for variable in variables().values():
        monkeypatch.delenv(variable, raising=False)
    assert cli.main(["run", "--currency", "EURO"]) == 2
    assert "SALESALIGN_REPORTING_CURRENCY='EURO': expected an ISO 4217 code" in capsys.readouterr().err
    monkeypatch.setenv("SALESALIGN_SOURCE", "files")  # from the environment, without a drop
    assert cli.main(["run"]) == 2
    assert "--source files needs --path DIR (or SALESALIGN_SOURCE_PATH)" in capsys.readouterr().err
    assert cli.main(["run", "--source", "demo", "--profile", "maven"]) == 2
    assert "--profile applies to --source files, salesforce or hubspot" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # nothing was written


def test_salesalign_run_help_shows_every_option_and_its_variable(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["run", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option, name in cli.RUN_OPTIONS.items():
        assert f"--{option}" in text and f"${variables()[name]}" in text, option
    assert "(default: $SALESALIGN_REPORTING_CURRENCY, else USD)" in text
    options = vars(cli.build_parser().parse_args(["run"]))
    assert set(options) - {"command", "func"} == set(cli.RUN_OPTIONS)  # each option sets a field


def _readme_settings_paragraph() -> str:
    text = (REPO / "README.md").read_text()
    paragraphs = [p for p in text.split("\n\n") if p.startswith("Settings, from environment variables")]
    assert len(paragraphs) == 1, "the README has one settings paragraph"
    return " ".join(paragraphs[0].split())


def test_the_readme_lists_exactly_the_settings_with_their_defaults():
    paragraph = _readme_settings_paragraph()
    named = re.findall(r"`((?:SALESALIGN|DAGSTER)_[A-Z_]+)`", paragraph)
    assert named == list(variables().values())
    for f in dataclasses.fields(Settings):
        if isinstance(f.default, str | int) and not isinstance(f.default, bool):
            assert f"`{f.metadata['variable']}` (default `{f.default}`" in paragraph, f.name
    assert "`SALESALIGN_HOME` (default `./data`" in paragraph
    assert "`DAGSTER_HOME` (default `$SALESALIGN_HOME/dagster`" in paragraph


# --- only salesalign/settings.py reads the environment -----------------------------------------

RUNTIME = (REPO / "salesalign", REPO / "orchestration")  # bench/ is a tool: outside
ENV_READERS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
SPAWNERS = {"run", "Popen", "call", "check_call", "check_output", "spawnve", "execve"}


def environment_reads(source: str, where: str) -> list[str]:
    """Where a module's `source` touches the process environment: `os.environ`, `os.getenv` and the
    like (however imported), or a child process given an `env=` that no settings function built."""
    tree = ast.parse(source, where)
    from_settings = {
        a.asname or a.name for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module == "salesalign.settings" for a in n.names
    }
    found = []
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and node.attr in ENV_READERS:
            found.append(f"{line} .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in ENV_READERS:
            found.append(f"{line} {node.id}")
        elif isinstance(node, ast.ImportFrom) and {a.name for a in node.names} & ENV_READERS:
            found.append(f"{line} imports {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Call):
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            env = [kw.value for kw in node.keywords if kw.arg == "env"]
            if callee in SPAWNERS and env and not _built_by_settings(env[0], from_settings):
                found.append(f"{line} {callee}(env=...)")
    return found


def _built_by_settings(node: ast.AST, from_settings: set[str]) -> bool:
    """A call of a function of salesalign.settings (imported by name, or through the module)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in from_settings
    return isinstance(func, ast.Attribute) and ast.unparse(func.value).split(".")[-1] == "settings"


def test_only_the_settings_module_reads_the_environment():
    modules = sorted(p for root in RUNTIME for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    assert len(modules) > 50
    reads = {str(p.relative_to(REPO)): environment_reads(p.read_text(), str(p.relative_to(REPO)))
             for p in modules}
    assert [hit for path, hits in reads.items() if path != "salesalign/settings.py" for hit in hits] == []
    assert reads["salesalign/settings.py"]  # the scan sees the reads it is there to find


@pytest.mark.parametrize("code, found", [
    ("import os\nx = os.environ['HOME']", True),
    ("import os\nos.environ.setdefault('A', '1')", True),
    ("from os import getenv\nx = getenv('A')", True),
    ("import os\nx = os.getenv('A')", True),
    ("import os, subprocess\nsubprocess.run(['x'], env={'A': '1'})", True),
    ("import subprocess\nsubprocess.run(['x'])", False),  # inherits the environment: fine
    ("import subprocess\nfrom salesalign.settings import child_env\nsubprocess.run(['x'], env=child_env())",
     False),
    ("import dagster as dg\ntoken = dg.EnvVar('SALESALIGN_API_TOKEN')", False),  # read by Dagster at run time
])
def test_the_scan_finds_every_way_of_reading_the_environment(code, found):
    assert bool(environment_reads(code, "probe.py")) is found

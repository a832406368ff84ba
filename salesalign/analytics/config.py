"""The declared causal assumptions (causal.yml) as typed objects, and the query they imply."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from salesalign.analytics.estimators import TrimRule

REPO_CAUSAL_YML = Path(__file__).resolve().parents[2] / "causal.yml"
CONFOUNDER_KINDS = {"numeric", "categorical", "binary"}
OUTCOME_KINDS = {"binary", "continuous"}


@dataclass(frozen=True)
class Variable:
    """A named column (confounder or outcome) with the SQL expression that computes it."""

    name: str
    sql: str
    kind: str


@dataclass(frozen=True)
class Practice:
    name: str
    treatment_sql: str
    outcomes: tuple[str, ...]
    confounders: tuple[str, ...]

    @property
    def treatment(self) -> str:
        """Column name of the treatment flag in the analysis frame."""
        return f"treat__{self.name}"


@dataclass(frozen=True)
class Settings:
    alpha: float = 0.05
    trim: TrimRule = field(default_factory=TrimRule)
    max_share_trimmed: float = 0.5
    min_deals_per_arm: int = 30
    segment_min_deals_per_arm: int = 20
    refutation_max_deals: int = 50_000
    refutation_subsets: int = 2
    max_abs_smd_after: float = 0.1
    min_e_value_ci: float = 1.25
    min_robustness_value_ci: float = 0.01


@dataclass(frozen=True)
class CausalConfig:
    settings: Settings
    outcomes: dict[str, Variable]
    confounders: dict[str, Variable]
    practices: dict[str, Practice]
    segment_sql: str | None = None

    def select_list(self) -> list[tuple[str, str]]:
        """(alias, sql) pairs of every column the effects need, in a stable order."""
        cols: dict[str, str] = {"opportunity_id": "d.opportunity_id"}
        if self.segment_sql:
            cols["segment_id"] = self.segment_sql
        for p in self.practices.values():
            cols[p.treatment] = p.treatment_sql
        for v in (*self.outcomes.values(), *self.confounders.values()):
            cols[v.name] = v.sql
        return list(cols.items())


def load_config(path: str | Path = REPO_CAUSAL_YML) -> CausalConfig:
    """Parse and validate causal.yml."""
    raw = yaml.safe_load(Path(path).read_text())
    s = raw.get("settings", {}) or {}
    trim = s.get("trimming", {}) or {}
    settings = Settings(
        alpha=float(s.get("alpha", 0.05)),
        trim=TrimRule(float(trim.get("lower", 0.02)), float(trim.get("upper", 0.98))),
        **{
            k: type(getattr(Settings, k))(s[k])
            for k in (
                "max_share_trimmed",
                "min_deals_per_arm",
                "segment_min_deals_per_arm",
                "refutation_max_deals",
                "refutation_subsets",
                "max_abs_smd_after",
                "min_e_value_ci",
                "min_robustness_value_ci",
            )
            if k in s
        },
    )

    def variables(section: str) -> dict[str, Variable]:
        out = {}
        for name, spec in (raw.get(section) or {}).items():
            kind = spec.get("kind")
            if kind not in (OUTCOME_KINDS if section == "outcomes" else CONFOUNDER_KINDS):
                raise ValueError(f"causal.yml {section}.{name}: kind {kind!r} not allowed")
            out[name] = Variable(name, str(spec["sql"]), kind)
        return out

    outcomes, confounders = variables("outcomes"), variables("confounders")
    practices = {}
    for name, spec in (raw.get("practices") or {}).items():
        p = Practice(name, str(spec["treatment"]), tuple(spec["outcomes"]), tuple(spec["confounders"]))
        unknown = [o for o in p.outcomes if o not in outcomes] + [
            c for c in p.confounders if c not in confounders
        ]
        if unknown:
            raise ValueError(f"causal.yml practice {name}: undeclared outcomes/confounders {unknown}")
        practices[name] = p
    return CausalConfig(settings, outcomes, confounders, practices, raw.get("segment"))


MART_TABLES = {"d": "marts.fct_deal_margin", "a": "marts.dim_accounts", "r": "marts.dim_reps"}
_COLUMN_REF = re.compile(r"\b([dar])\.([A-Za-z_][A-Za-z0-9_]*)")


def read_deals(con, config: CausalConfig) -> tuple[pd.DataFrame, list[str]]:
    """The analysis frame (one row per closed deal, only the declared columns) from the marts.

    Expressions that reference a column or table the warehouse does not have are left out of the
    frame and returned as ``missing`` (the effects then report those practices as not estimable).
    """
    existing: dict[str, set[str]] = {}
    for alias, table in MART_TABLES.items():
        schema, name = table.split(".")
        rows = con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()
        existing[alias] = {r[0] for r in rows}
    if not existing["d"]:
        raise LookupError(f"{MART_TABLES['d']} does not exist (build the marts first)")
    selected, missing = [], []
    for name, sql in config.select_list():
        refs = _COLUMN_REF.findall(sql)
        if all(col in existing[alias] for alias, col in refs):
            selected.append(f'{sql} as "{name}"')
        else:
            missing.append(name)
    joins = "".join(
        f" left join {MART_TABLES[a]} as {a} on {a}.{key} = d.{key}"
        for a, key in (("a", "account_id"), ("r", "rep_id"))
        if existing[a]
    )
    frame = con.execute(
        f"select {', '.join(selected)} from {MART_TABLES['d']} as d{joins} order by d.opportunity_id"
    ).df()
    return frame, missing

"""The declared causal assumptions (causal.yml) as typed objects, and the query they imply.

A variable (outcome or confounder) is `sql:` over the marts (`d`, `a`, `r`), or `attribute:
<entity>.<name>`: a custom attribute a mapping profile kept (`raw.attributes`), e.g. `attribute:
opportunities.competitor_type`; `segment:` is SQL or `{attribute: ...}` too. An attribute the
warehouse does not hold is reported by name with the attributes it does hold.
"""

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
NOT_DECLARED = (
    "not estimable: no causal assumptions declared for this source (give them: salesalign run "
    "--causal FILE, or SALESALIGN_CAUSAL_YML)"
)
ATTRIBUTES_TABLE = "raw.attributes"
# entity of an attribute -> the deal mart's column holding that entity's key
ATTRIBUTE_KEYS = {
    "opportunities": "opportunity_id",
    "accounts": "account_id",
    "reps": "rep_id",
    "products": "product_id",
}
ATTRIBUTE_CASTS = {"numeric": "DOUBLE", "continuous": "DOUBLE", "binary": "BOOLEAN", "categorical": None}


@dataclass(frozen=True)
class Variable:
    """A named column (confounder or outcome) with the SQL expression that computes it."""

    name: str
    sql: str
    kind: str
    attribute: tuple[str, str] | None = None  # (entity, name) of a custom attribute


def attribute_alias(entity: str) -> str:
    """The alias of an entity's attribute pivot in the deals query."""
    return f"x_{entity}"


def _attribute(ref, where: str) -> tuple[str, str]:
    entity, _, name = str(ref).partition(".")
    if entity not in ATTRIBUTE_KEYS or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(
            f"causal.yml {where}: attribute {ref!r} must be <entity>.<name> with entity one of "
            f"{', '.join(ATTRIBUTE_KEYS)} (the profile's `attributes:` names)"
        )
    return entity, name


def _attribute_sql(attr: tuple[str, str], kind: str) -> str:
    column = f'{attribute_alias(attr[0])}."{attr[1]}"'
    cast = ATTRIBUTE_CASTS.get(kind)
    return f"CAST({column} AS {cast})" if cast else column


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
    declared: bool = True  # False: the source has no causal.yml (the effects say so)
    segment_attribute: tuple[str, str] | None = None

    def attributes(self) -> dict[str, tuple[str, str]]:
        """Variable name (or `segment_id`) -> the custom attribute it reads, for every attribute used."""
        variables = (*self.outcomes.values(), *self.confounders.values())
        out = {v.name: v.attribute for v in variables if v.attribute}
        if self.segment_attribute:
            out["segment_id"] = self.segment_attribute
        return out

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


def undeclared() -> CausalConfig:
    """The configuration of a source without causal.yml: the contract's practices, nothing to estimate."""
    from salesalign.contract import PRACTICE_ACTIVITY_TYPES

    practices = {p: Practice(p, "NULL", ("win",), ()) for p in PRACTICE_ACTIVITY_TYPES}
    return CausalConfig(Settings(), {}, {}, practices, declared=False)


def load_config(path: str | Path | None = REPO_CAUSAL_YML) -> CausalConfig:
    """Parse and validate causal.yml; None: the source declares no causal assumptions."""
    if path is None:
        return undeclared()
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
            if ("sql" in spec) == ("attribute" in spec):
                raise ValueError(f"causal.yml {section}.{name}: give exactly one of sql or attribute")
            if "attribute" in spec:
                attr = _attribute(spec["attribute"], f"{section}.{name}")
                out[name] = Variable(name, _attribute_sql(attr, kind), kind, attr)
            else:
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
    segment, segment_attribute = raw.get("segment"), None
    if isinstance(segment, dict):
        if set(segment) != {"attribute"}:
            raise ValueError("causal.yml segment: SQL text or {attribute: <entity>.<name>}")
        segment_attribute = _attribute(segment["attribute"], "segment")
        segment = _attribute_sql(segment_attribute, "categorical")
    return CausalConfig(
        settings, outcomes, confounders, practices, segment, segment_attribute=segment_attribute
    )


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
    absent = missing_attributes(con, config)
    selected, missing = [], []
    for name, sql in config.select_list():
        refs = _COLUMN_REF.findall(sql)
        if name in absent:
            missing += [name, absent[name]]
        elif all(col in existing[alias] for alias, col in refs):
            selected.append(f'{sql} as "{name}"')
        else:
            missing.append(name)
    joins = "".join(
        f" left join {MART_TABLES[a]} as {a} on {a}.{key} = d.{key}"
        for a, key in (("a", "account_id"), ("r", "rep_id"))
        if existing[a]
    )
    joins += _attribute_joins(config, absent)
    frame = con.execute(
        f"select {', '.join(selected)} from {MART_TABLES['d']} as d{joins} order by d.opportunity_id"
    ).df()
    return frame, missing


def landed_attributes(con) -> dict[str, set[str]]:
    """Entity -> the custom attribute names the warehouse holds (none without `raw.attributes`)."""
    schema, name = ATTRIBUTES_TABLE.split(".")
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()[0]
    out: dict[str, set[str]] = {}
    if exists:
        for entity, attr in con.execute(f"select distinct entity, name from {ATTRIBUTES_TABLE}").fetchall():
            out.setdefault(entity, set()).add(attr)
    return out


def missing_attributes(con, config: CausalConfig) -> dict[str, str]:
    """Variable name -> why its attribute cannot be read (not landed), naming what is landed."""
    used = config.attributes()
    if not used:
        return {}
    landed = landed_attributes(con)
    held = ", ".join(f"{e}.{n}" for e in sorted(landed) for n in sorted(landed[e])) or "none"
    return {
        var: f"{var}: attribute {entity}.{name} is not in {ATTRIBUTES_TABLE} (the source's profile keeps "
        f"no such attribute; attributes landed: {held})"
        for var, (entity, name) in used.items()
        if name not in landed.get(entity, set())
    }


def _attribute_joins(config: CausalConfig, absent: dict[str, str]) -> str:
    """One pivot of `raw.attributes` per entity the selected variables read (the last value landed)."""
    by_entity: dict[str, set[str]] = {}
    for var, (entity, name) in config.attributes().items():
        if var not in absent:
            by_entity.setdefault(entity, set()).add(name)
    joins = ""
    for entity, names in sorted(by_entity.items()):
        pivots = ", ".join(
            f"arg_max(value, _source_row) filter (where name = '{n}') as \"{n}\"" for n in sorted(names)
        )
        alias = attribute_alias(entity)
        joins += (
            f" left join (select entity_id, {pivots} from {ATTRIBUTES_TABLE} where entity = '{entity}' "
            f"group by entity_id) as {alias} on {alias}.entity_id = d.{ATTRIBUTE_KEYS[entity]}"
        )
    return joins

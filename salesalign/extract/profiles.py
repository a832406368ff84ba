"""Mapping profiles: declarative YAML that maps a foreign export onto the raw contract.

A profile names, for each contract table it can fill, where the rows come from (a file or glob of the
export, a generated day range, rows written in the profile) and how every contract column is
computed. Shipped profiles live in `profiles/<name>.yml` (`salesforce`, `hubspot`, `maven`); a user
passes their own file with `--profile path.yml`. docs/sources.md documents the language with a worked
example; in short, per table::

    opportunities:
      file: deals                  # stem, glob (UNION ALL BY NAME) or folder; csv/parquet/jsonl
      scratch:                     # computed once per input row, usable by later fields, not landed
        won: {expr: "Outcome = 'Won'", columns: [Outcome]}
      filter: "Region <> 'Test'"   # DuckDB SQL over source columns and scratch fields
      group_by: [account_id]       # derive one row per distinct value: the other fields need `agg`
      fields:
        opportunity_id: Id                                  # a source column, trimmed, blank = NULL
        stage: {column: Phase, map: {Won: closed_won}, map_default: error}
        list_amount: {lookup: {input: prices, key: sku, match: product_id, value: price, default: 0}}
        is_won: {derived: "stage = 'closed_won'"}           # DuckDB SQL over the mapped fields
      attributes:                  # extra source columns kept as custom attributes (raw.attributes)
        competitor_type: Competitor

Fields are computed in this order: scratch fields, then the filter, then source fields (`column`,
`value`, `expr`, then `map`, `format`, `default`), the grouping (`group_by` with per-field `agg`),
lookups (`match` names a field), derived fields. Every input row carries the hidden columns `_file`
(file name) and `_row` (1-based row within the file), which errors cite. A contract column the
profile does not name is NULL; a required one must be named. `assumption` marks a value the export
does not hold: it is reported, never hidden.

`map_table` runs one table in a DuckDB connection and reports rows read, filtered and mapped, the
source columns the profile does not use and the defaults it applied (`salesalign profile check`
prints them: `check.py`); `materialise` writes each mapped table as a Parquet file in contract shape
with deterministic content, so the same export materialised twice yields byte-identical files and
landing (idempotent by SHA-256) adds nothing the second time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from salesalign import contract
from salesalign.contract.tables import ATTRIBUTES
from salesalign.extract.sources import SourceError

PROFILE_DIR = Path(__file__).with_name("profiles")
INPUT_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
SOURCE_KINDS = ("column", "value", "expr", "lookup", "derived")
ROW_KINDS = ("column", "value", "expr")  # computed from one input row
FIELD_KEYS = set(SOURCE_KINDS) | {"map", "map_default", "format", "default", "assumption", "trim"}
FIELD_KEYS |= {"columns", "optional", "agg"}
LOOKUP_KEYS = {"input", "key", "match", "value", "agg", "default"}
LOOKUP_AGGS = {
    "first": "arg_min({v}, _row)",
    "last": "arg_max({v}, _row)",
    "sum": "sum(TRY_CAST({v} AS DOUBLE))",
    "min": "min({v})",
    "max": "max({v})",
    "count": "count({v})",
}
# Per-field aggregation of a `group_by` table; order-dependent ones follow input order (deterministic).
GROUP_AGGS = {
    "any_value": "any_value({v} ORDER BY _file_index, _row)",  # the first non-null value
    "first": "first({v} ORDER BY _file_index, _row)",
    "last": "last({v} ORDER BY _file_index, _row)",
    "min": "min({v})",
    "max": "max({v})",
    "sum": "sum({v})",
    "count": "count({v})",
    "count_distinct": "count(DISTINCT {v})",
}
TYPED_AGGS = {"min", "max", "sum"}  # compare or add in the contract type, not as text
CSV_KEYS = {"delimiter", "encoding", "quote", "escape", "header", "skip", "null"}
TABLE_KEYS = {"file", "csv", "date_range", "rows", "filter", "fields", "scratch", "group_by", "attributes"}
TOP_KEYS = {"name", "description", "as_of", "inputs", "tables", "incremental"}
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# The contract's required core: an export without an input for it cannot be mapped at all.
CORE_TABLE = "opportunities"


class ProfileError(SourceError):
    """A profile is malformed, or an input does not match it; the message names the profile file and
    line, or the input file, row and column. Not transient: retrying cannot help."""


@dataclass(frozen=True, eq=False)
class Where:
    """A place in a profile for messages: `file:line: tables.opportunities.fields.stage`."""

    file: str
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    path: tuple[str, ...] = ()

    def __truediv__(self, key: Any) -> Where:
        return Where(self.file, self.lines, (*self.path, str(key)))

    def __str__(self) -> str:
        line = next((self.lines[self.path[:n]] for n in range(len(self.path), 0, -1)
                     if self.path[:n] in self.lines), None)
        head = f"{self.file}:{line}" if line else self.file
        return f"{head}: {'.'.join(self.path)}" if self.path else head


def yaml_lines(text: str) -> dict[tuple[str, ...], int]:
    """Key path -> 1-based line of every mapping key and list item of a YAML text ({} if unparsable)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    out: dict[tuple[str, ...], int] = {}

    def walk(node: Any, path: tuple[str, ...], seen: set[int]) -> None:
        if id(node) in seen:  # an alias (`*stages`) points at a node already walked
            return
        seen = seen | {id(node)}
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                out.setdefault((*path, str(k.value)), k.start_mark.line + 1)
                walk(v, (*path, str(k.value)), seen)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                out.setdefault((*path, str(i)), v.start_mark.line + 1)
                walk(v, (*path, str(i)), seen)

    walk(root, (), set())
    return out


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # one of SOURCE_KINDS
    arg: Any
    map: dict[str, Any] | None = None
    map_default: str = "keep"  # keep | null | error
    format: str | None = None
    default: Any = None
    assumption: str | None = None
    trim: bool = True
    # the source columns an `expr` reads (API and database sources request them)
    columns: tuple[str, ...] = ()
    # a `column` some exports lack (e.g. CurrencyIsoCode): NULL, then `default`, when absent
    optional: bool = False
    agg: str | None = None  # a `group_by` table's aggregation of this field over the group's rows
    where: str = ""  # file:line of its declaration, for messages

    @property
    def source_columns(self) -> tuple[str, ...]:
        return (self.arg,) if self.kind == "column" else self.columns

    @property
    def default_sql_value(self) -> Any:
        """The default this field falls back to (a lookup's own `default` for lookups)."""
        return self.arg.get("default") if self.kind == "lookup" else self.default


@dataclass(frozen=True)
class InputSpec:
    """Where rows come from: file(s) under the drop, a generated day range, or rows in the profile."""

    file: str | None = None
    csv: dict[str, Any] = field(default_factory=dict)
    date_range: dict[str, str] | None = None  # {start, end, column}: one row per day, e.g. USD fx rates
    rows: tuple[dict[str, Any], ...] | None = None  # a static table written in the profile

    @property
    def static(self) -> bool:
        return self.file is None


@dataclass(frozen=True)
class TableSpec:
    table: str
    input: InputSpec
    fields: tuple[FieldSpec, ...]
    filter: str | None = None  # DuckDB SQL over source columns: which input rows belong to this table
    scratch: tuple[FieldSpec, ...] = ()  # per-row helper values, usable by later fields, not landed
    group_by: tuple[str, ...] = ()  # fields (or scratch fields) whose distinct values make the rows
    attributes: tuple[FieldSpec, ...] = ()  # extra source values kept as custom attributes
    where: str = ""


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    tables: dict[str, TableSpec]
    inputs: dict[str, InputSpec]
    as_of: str | None
    text: str  # the YAML as loaded: part of the fingerprint of what it produces
    incremental: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # database sources: object -> columns
    file: str = "profile"  # where it was loaded from, for messages

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def assumptions(self) -> dict[str, str]:
        """`table.field` -> why the value is assumed rather than read (for run metadata and docs)."""
        return {
            f"{t}.{f.name}": f.assumption
            for t, spec in self.tables.items()
            for f in (*spec.fields, *spec.scratch, *spec.attributes)
            if f.assumption
        }


# ------------------------------------------------------------------ loading and validation


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yml"))


def load_profile(name_or_file: str | Path) -> Profile:
    """A shipped profile by name (`maven`) or a profile file path, validated against the contract."""
    path = Path(name_or_file)
    if not path.suffix and (PROFILE_DIR / f"{name_or_file}.yml").exists():
        path = PROFILE_DIR / f"{name_or_file}.yml"
    if not path.is_file():
        raise ProfileError(
            f"profile {name_or_file!r} is neither a shipped profile "
            f"({', '.join(shipped_profiles())}) nor a file"
        )
    text = path.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    return parse_profile(doc, text, where=str(path))


def parse_profile(doc: Any, text: str = "", where: str = "profile") -> Profile:
    """Validate a loaded profile document; every error names the file, the line and the key."""
    at = Where(where, yaml_lines(text) if text else {})
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
        raise ProfileError(f"{at}: a profile needs a `tables:` mapping of contract table -> spec")
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise ProfileError(f"{at / sorted(unknown)[0]}: unknown top-level key(s) {sorted(unknown)}")
    as_of = str(doc["as_of"]) if doc.get("as_of") is not None else None
    inputs = {
        str(n): _input(spec, at / "inputs" / n) for n, spec in (doc.get("inputs") or {}).items()
    }
    tables = {}
    for key, spec in doc["tables"].items():
        name = str(key).split("/")[0]  # `activities/tasks` and `activities/events` both fill activities
        if name not in contract.TABLES_BY_NAME:
            raise ProfileError(
                f"{at / 'tables' / key}: {name!r} is not a raw contract table "
                f"({', '.join(contract.TABLE_NAMES)})"
            )
        tables[str(key)] = _table(name, spec, inputs, at / "tables" / key)
    incremental = doc.get("incremental") or {}
    for obj, spec in incremental.items():
        if not isinstance(spec, dict) or set(spec) != {"changed_at", "id"}:
            raise ProfileError(
                f"{at / 'incremental' / obj}: incremental.{obj} needs exactly changed_at and id "
                "(column names)"
            )
    return Profile(
        str(doc.get("name") or Path(where).stem),
        str(doc.get("description") or ""),
        tables,
        inputs,
        as_of,
        text or yaml.safe_dump(doc, sort_keys=True),
        incremental,
        where,
    )


def _input(spec: Any, where: Where) -> InputSpec:
    if not isinstance(spec, dict):
        raise ProfileError(f"{where}: expected a mapping")
    csv = spec.get("csv") or {}
    if set(csv) - CSV_KEYS:
        raise ProfileError(
            f"{where / 'csv'}: unknown csv option(s) {sorted(set(csv) - CSV_KEYS)}; known: {sorted(CSV_KEYS)}"
        )
    date_range, rows = spec.get("date_range"), spec.get("rows")
    given = [k for k in ("file", "date_range", "rows") if spec.get(k) is not None]
    if len(given) != 1:
        raise ProfileError(f"{where}: give exactly one of `file`, `date_range` or `rows`")
    if date_range is not None and (
        not isinstance(date_range, dict) or set(date_range) != {"start", "end", "column"}
    ):
        raise ProfileError(f"{where / 'date_range'}: date_range needs start, end and column")
    if rows is not None:
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and r for r in rows):
            raise ProfileError(f"{where / 'rows'}: rows is a list of mappings (column: value), at least one")
        names = list(dict.fromkeys(str(k) for r in rows for k in r))
        if any(str(k).startswith("_") for k in names):
            raise ProfileError(f"{where / 'rows'}: column names starting with `_` are reserved")
    return InputSpec(
        spec.get("file"),
        dict(csv),
        {k: str(v) for k, v in date_range.items()} if date_range else None,
        tuple({str(k): v for k, v in r.items()} for r in rows) if rows is not None else None,
    )


def _table(name: str, spec: Any, inputs: dict[str, InputSpec], where: Where) -> TableSpec:
    if not isinstance(spec, dict) or not isinstance(spec.get("fields"), dict):
        raise ProfileError(f"{where}: needs `file` (or `date_range` or `rows`) and `fields`")
    if set(spec) - TABLE_KEYS:
        bad = sorted(set(spec) - TABLE_KEYS)
        raise ProfileError(f"{where / bad[0]}: unknown key(s) {bad}; known: {sorted(TABLE_KEYS)}")
    t = contract.table(name)
    group_by = spec.get("group_by") or []
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise ProfileError(f"{where / 'group_by'}: group_by is a list of field (or scratch) names")
    scratch = []
    for sname, sspec in (spec.get("scratch") or {}).items():
        w = where / "scratch" / sname
        if str(sname).lower() in {c.lower() for c in t.column_names}:
            raise ProfileError(f"{w}: a scratch field must not be named like a column of {name}")
        f = _field(str(sname), sspec, inputs, w)
        if f.kind not in ROW_KINDS or f.agg:
            raise ProfileError(f"{w}: a scratch field is a column, value or expr (computed per input row)")
        scratch.append(f)
    fields = []
    for fname, fspec in spec["fields"].items():
        if fname not in t.column_names:
            raise ProfileError(
                f"{where / 'fields' / fname}: {fname!r} is not a column of {name} "
                f"({', '.join(t.column_names)})"
            )
        fields.append(_field(fname, fspec, inputs, where / "fields" / fname))
    required = [c.name for c in t.columns if not c.nullable and c.name not in spec["fields"]]
    if required:
        raise ProfileError(f"{where}: required contract column(s) not mapped: {', '.join(required)}")
    attributes = []
    for aname, aspec in (spec.get("attributes") or {}).items():
        w = where / "attributes" / aname
        if not ATTRIBUTE_NAME.match(str(aname)):
            raise ProfileError(f"{w}: an attribute name is lower-case letters, digits and _ (e.g. deal_size)")
        if len(t.primary_key) != 1:
            raise ProfileError(
                f"{w}: attributes need a table with a one-column key ({name} has {t.primary_key})"
            )
        if aname in t.column_names:
            raise ProfileError(f"{w}: {aname!r} is a contract column of {name}: map it under `fields`")
        f = _field(str(aname), aspec, inputs, w)
        if f.kind == "lookup":
            raise ProfileError(f"{w}: an attribute is a column, value, expr or derived")
        attributes.append(f)
    names = {f.name for f in fields} | {f.name for f in scratch}
    row_names = {f.name for f in (*fields, *scratch) if f.kind in ROW_KINDS}
    for g in group_by:
        if g not in row_names:
            raise ProfileError(
                f"{where / 'group_by'}: {g!r} is not a column, value or expr field (or scratch field) "
                f"of this table ({', '.join(sorted(names))})"
            )
    for f in (*fields, *attributes):
        w = f.where
        if group_by and f.kind in ("column", "expr") and f.name not in group_by and not f.agg:
            raise ProfileError(
                f"{w}: in a group_by table every column or expr field not grouped by needs `agg` "
                f"({', '.join(GROUP_AGGS)})"
            )
        if f.agg and (not group_by or f.kind not in ROW_KINDS or f.name in group_by):
            raise ProfileError(f"{w}: `agg` applies to the column, value and expr fields of a group_by table "
                               "that are not grouped by")
    for f in fields:
        if f.kind == "lookup" and f.arg["match"] not in names:
            raise ProfileError(
                f"{f.where}: lookup match {f.arg['match']!r} is not a field of this table "
                f"({', '.join(sorted(names))})"
            )
    filter_sql = spec.get("filter")
    if filter_sql is not None and not isinstance(filter_sql, str):
        raise ProfileError(f"{where / 'filter'}: filter is DuckDB SQL text (a condition on the input rows)")
    return TableSpec(
        name,
        _input({k: spec.get(k) for k in ("file", "csv", "date_range", "rows")}, where),
        tuple(fields),
        filter_sql,
        tuple(scratch),
        tuple(group_by),
        tuple(attributes),
        str(where),
    )


def _field(name: str, spec: Any, inputs: dict[str, InputSpec], where: Where) -> FieldSpec:
    if isinstance(spec, str):
        spec = {"column": spec}
    if not isinstance(spec, dict):
        raise ProfileError(f"{where}: expected a column name or a mapping")
    if set(spec) - FIELD_KEYS:
        raise ProfileError(
            f"{where}: unknown key(s) {sorted(set(spec) - FIELD_KEYS)}; known: {sorted(FIELD_KEYS)}"
        )
    kinds = [k for k in SOURCE_KINDS if k in spec]
    if len(kinds) != 1:
        raise ProfileError(f"{where}: give exactly one of {', '.join(SOURCE_KINDS)}")
    kind = kinds[0]
    if kind == "lookup":
        lk = spec["lookup"]
        if not isinstance(lk, dict) or {"input", "key", "match", "value"} - set(lk):
            raise ProfileError(
                f"{where}: lookup needs input, key, match and value (and optional agg, default)"
            )
        if set(lk) - LOOKUP_KEYS:
            raise ProfileError(f"{where}: unknown lookup key(s) {sorted(set(lk) - LOOKUP_KEYS)}")
        if lk["input"] not in inputs:
            raise ProfileError(f"{where}: lookup input {lk['input']!r} is not declared under `inputs`")
        if lk.get("agg", "first") not in LOOKUP_AGGS:
            raise ProfileError(f"{where}: lookup agg must be one of {', '.join(LOOKUP_AGGS)}")
    if kind in ("lookup", "derived") and ({"map", "format", "default"} & set(spec)):
        raise ProfileError(
            f"{where}: map/format/default apply to column, value and expr fields only "
            "(a lookup takes its default inside `lookup:`)"
        )
    for key in ("expr", "derived"):
        if kind == key and not isinstance(spec[key], str):
            raise ProfileError(f"{where}: {key} is DuckDB SQL text")
    map_default = spec.get("map_default", "keep")
    map_default = "null" if map_default is None else map_default  # YAML `null`
    if map_default not in ("keep", "null", "error"):
        raise ProfileError(f"{where}: map_default must be keep, null or error")
    value_map = spec.get("map")
    if value_map is not None and not isinstance(value_map, dict):
        raise ProfileError(f"{where}: map must be a mapping of source value -> contract value")
    if "columns" in spec and kind != "expr":
        raise ProfileError(f"{where}: `columns` lists the source columns of an expr")
    if "optional" in spec and kind != "column":
        raise ProfileError(f"{where}: `optional` applies to column fields")
    if "agg" in spec and spec["agg"] not in GROUP_AGGS:
        raise ProfileError(f"{where}: agg must be one of {', '.join(GROUP_AGGS)}")
    return FieldSpec(
        name,
        kind,
        spec[kind],
        value_map,
        map_default,
        spec.get("format"),
        spec.get("default"),
        spec.get("assumption"),
        bool(spec.get("trim", True)),
        tuple(spec.get("columns") or ()),
        bool(spec.get("optional", False)),
        spec.get("agg"),
        str(where),
    )


# ------------------------------------------------------------------ SQL rendering


def ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def input_files(drop: Path, spec: InputSpec) -> list[Path]:
    """The files of an input under the drop folder, in name order (a stem, a glob or a folder)."""
    if spec.file is None:
        return []
    pattern = spec.file
    candidates = (
        sorted(drop.glob(pattern))
        if any(ch in pattern for ch in "*?[")
        else sorted(drop.glob(f"{pattern}.*"))
    )
    if (drop / pattern).is_dir():
        candidates += sorted((drop / pattern).iterdir())
    elif (drop / pattern).is_file():
        candidates.append(drop / pattern)
    return [p for p in candidates if p.is_file() and p.suffix.lower() in INPUT_FORMATS]


def _reader(path: Path, csv: dict[str, Any]) -> str:
    fmt = INPUT_FORMATS[path.suffix.lower()]
    if fmt == "parquet":
        return f"read_parquet({literal(str(path))})"
    if fmt == "jsonl":
        return f"read_json({literal(str(path))}, format = 'newline_delimited')"
    opts = [f"header = {literal(bool(csv.get('header', True)))}", "all_varchar = true"]
    if "delimiter" in csv:
        opts.append(f"delim = {literal(csv['delimiter'])}")
    for key in ("quote", "escape", "encoding"):
        if key in csv:
            opts.append(f"{key} = {literal(csv[key])}")
    if "skip" in csv:
        opts.append(f"skip = {int(csv['skip'])}")
    if "null" in csv:
        opts.append(f"nullstr = {literal(csv['null'])}")
    return f"read_csv({literal(str(path))}, {', '.join(opts)})"


def _static_sql(spec: InputSpec) -> str:
    """A static table: a day range, or the profile's own rows (values as text, like CSV cells)."""
    if spec.date_range:
        dr = spec.date_range
        return (
            f"SELECT CAST(d AS DATE) AS {ident(dr['column'])}, 'date_range' AS _file, 0 AS _file_index, "
            f"row_number() OVER (ORDER BY d) AS _row FROM range(CAST({literal(dr['start'])} AS DATE), "
            f"CAST({literal(dr['end'])} AS DATE) + INTERVAL 1 DAY, INTERVAL 1 DAY) t(d)"
        )
    rows = spec.rows or ()
    names = list(dict.fromkeys(k for r in rows for k in r))
    values = ", ".join(
        "(" + ", ".join([str(i)] + [f"CAST({literal(r.get(n))} AS VARCHAR)" for n in names]) + ")"
        for i, r in enumerate(rows, start=1)
    )
    cols = ", ".join(["_row", *map(ident, names)])
    return f"SELECT *, 'rows' AS _file, 0 AS _file_index FROM (VALUES {values}) t({cols})"


def _input_sql(
    con: duckdb.DuckDBPyConnection, drop: Path, spec: InputSpec, where: str
) -> tuple[str, list[Path]]:
    """SQL for the input's rows with `_file` and `_row` (1-based within the file), and its files;
    several files are combined by column name (UNION ALL BY NAME)."""
    if spec.static:
        return _static_sql(spec), []
    files = input_files(drop, spec)
    if not files:
        return "", []
    parts = []
    for i, path in enumerate(files):
        reader = _reader(path, spec.csv)
        try:
            con.execute(f"DESCRIBE SELECT * FROM {reader}")
        except duckdb.Error as exc:
            raise ProfileError(f"{path}: cannot be read for {where}: {_first_line(exc)}") from exc
        parts.append(
            f"SELECT *, {literal(path.name)} AS _file, {i} AS _file_index, "
            f"row_number() OVER () AS _row FROM {reader}"
        )
    return " UNION ALL BY NAME ".join(f"({p})" for p in parts), files


def _first_line(exc: Exception) -> str:
    text = str(exc)
    for prefix in ("Invalid Input Error: ", "Binder Error: ", "Parser Error: ", "Conversion Error: "):
        text = text.removeprefix(prefix)
    return text.splitlines()[0][:500] if text else type(exc).__name__


def _row_error(value_sql: str, what: str, after: str) -> str:
    """SQL raising an error that names the input file, the row and the value (`_file`, `_row`)."""
    return (
        "error(_file || ' row ' || CAST(_row AS VARCHAR) || "
        + literal(f" (header is row 0), {what} ")
        + f" || CAST({value_sql} AS VARCHAR) || "
        + literal(after)
        + ")"
    )


def _value_sql(f: FieldSpec, as_of: str | None, columns: set[str]) -> tuple[str, str | None]:
    """The SQL of a column/value/expr field, and (when it has a default) the SQL of its value before
    the default (NULL there means the default was used)."""

    def fill(v: Any) -> Any:
        if isinstance(v, str) and "{as_of}" in v:
            if as_of is None:
                raise ProfileError(f"{f.where}: uses {{as_of}} but the profile has no `as_of`")
            return v.replace("{as_of}", as_of)
        return v

    if f.kind == "column" and f.arg not in columns:  # only optional columns get here
        sql = "CAST(NULL AS VARCHAR)"
    elif f.kind == "column":
        sql = ident(f.arg)
        sql = f"nullif(trim(CAST({sql} AS VARCHAR)), '')" if f.trim else sql
    elif f.kind == "value":
        sql = literal(fill(f.arg))
    else:  # expr
        sql = f"({f.arg})"
    source = f"column {f.arg}" if f.kind == "column" else f"the {f.kind} of {f.name}"
    if f.map:
        # kept values are text: mapped ones are too, so the CASE has one type (the contract casts it)
        keep = f.map_default == "keep"
        whens = " ".join(
            f"WHEN CAST({sql} AS VARCHAR) = {literal(str(k))} "
            f"THEN {literal(str(v) if keep and v is not None and not isinstance(v, bool) else v)}"
            for k, v in f.map.items()
        )
        unmapped = _row_error(
            sql, f"{source}: unmapped value", f" (not in the map for {f.name}; map_default: error)"
        )
        otherwise = {"keep": sql, "null": "NULL", "error": unmapped}
        sql = f"CASE WHEN {sql} IS NULL THEN NULL {whens} ELSE {otherwise[f.map_default]} END"
    if f.format == "iso8601":  # 2024-01-05T10:11:12.000+0000 / ...Z / ...+02:00 -> naive UTC
        text = f"CAST({sql} AS VARCHAR)"
        bad = _row_error(text, f"{source}: value", f" is not an ISO 8601 time (format of {f.name})")
        sql = (f"CASE WHEN {sql} IS NULL THEN NULL WHEN TRY_CAST({text} AS TIMESTAMPTZ) IS NULL THEN {bad} "
               f"ELSE timezone('UTC', CAST({text} AS TIMESTAMPTZ)) END")
    elif f.format:
        text = f"CAST({sql} AS VARCHAR)"
        bad = _row_error(text, f"{source}: value", f" does not match format {f.format} (of {f.name})")
        conv = f"strptime({text}, {literal(f.format)})"
        conv = f"timezone('UTC', {conv})" if "%z" in f.format or "%Z" in f.format else conv
        sql = (f"CASE WHEN {sql} IS NULL THEN NULL WHEN try_strptime({text}, {literal(f.format)}) IS NULL "
               f"THEN {bad} ELSE {conv} END")
    if f.default is not None:
        return f"coalesce({sql}, {literal(fill(f.default))})", sql
    return sql, None


def _sql_names(sql: str) -> set[str]:
    """Lower-cased words and quoted names in a SQL text: which source columns it may read."""
    words = re.findall(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_]*)', sql)
    return {(q.replace('""', '"') or w).lower() for q, w in words}


@dataclass
class TableReport:
    """What mapping one profile table did: counts, unused source columns, defaults applied."""

    key: str
    table: str
    kind: str  # file | static | derived (group_by)
    files: tuple[str, ...]
    read: int  # input rows
    kept: int  # rows passing the filter
    mapped: int  # rows of the contract table (after grouping)
    unused_columns: tuple[str, ...] = ()
    defaults: dict[str, int] = field(default_factory=dict)  # field -> rows on which its default was used
    attributes: tuple[str, ...] = ()
    relation: str = ""  # the temporary table holding the mapped rows

    @property
    def filtered(self) -> int:
        return self.read - self.kept


class _Plan:
    """The CTEs of one table's mapping, validated one at a time so a bad expression is named."""

    def __init__(self, con: duckdb.DuckDBPyConnection, profile: Profile, key: str):
        self.con, self.profile, self.key = con, profile, key
        self.ctes: list[tuple[str, str]] = []

    def sql(self, select: str) -> str:
        return f"WITH {', '.join(f'{n} AS ({q})' for n, q in self.ctes)} {select}" if self.ctes else select

    def add(self, name: str, query: str, parts: list[tuple[str, str, str]] = ()) -> None:
        """Add CTE `name`; if it does not bind, find which of `parts` ((where, sql, FROM)) is wrong."""
        self.ctes.append((name, query))
        try:
            self.con.execute(f"DESCRIBE {self.sql(f'SELECT * FROM {name}')}")
        except duckdb.Error as exc:
            self.ctes.pop()
            for where, part, source in parts:
                try:
                    self.con.execute(f"DESCRIBE {self.sql(f'SELECT ({part}) FROM {source}')}")
                except duckdb.Error as part_exc:
                    raise ProfileError(f"{where}: bad SQL: {_first_line(part_exc)}") from part_exc
            raise ProfileError(
                f"profile {self.profile.name}, table {self.key}: bad SQL: {_first_line(exc)}"
            ) from exc

    def count(self, name: str) -> int:
        return self.con.execute(self.sql(f"SELECT count(*) FROM {name}")).fetchone()[0]


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def _temp_input(
    con: duckdb.DuckDBPyConnection, drop: Path, spec: InputSpec, where: str, cache: dict
) -> tuple[str | None, list[Path]]:
    """The input read once into a temporary table (name, files); None when the export lacks it."""
    ident_key = (spec.file, json.dumps(spec.csv, sort_keys=True), json.dumps(spec.date_range),
                 json.dumps(spec.rows, default=str))
    if ident_key in cache:
        return cache[ident_key]
    sql, files = _input_sql(con, drop, spec, where)
    if not sql:
        cache[ident_key] = (None, [])
        return cache[ident_key]
    name = f"_input_{len(cache)}"
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    except duckdb.Error as exc:
        raise ProfileError(
            f"{', '.join(map(str, files)) or 'static table'}: cannot be read for {where}: {_first_line(exc)}"
        ) from exc
    cache[ident_key] = (name, files)
    return cache[ident_key]


def map_table(
    con: duckdb.DuckDBPyConnection, drop: Path, profile: Profile, key: str, cache: dict | None = None
) -> TableReport | None:
    """Map the profile's table `key` into a temporary table (contract columns uncast, attribute
    columns `__a_<name>`, `_file`, `_row`, in input order) and report on it; None when the drop has
    no input for it. Values that do not fit the contract raise naming file, row and column."""
    cache = {} if cache is None else cache
    spec = profile.tables[key]
    table = spec.table
    where = f"profile {profile.name}, table {key}"
    source, files = _temp_input(con, drop, spec.input, where, cache)
    if source is None:
        return None
    input_columns = [c for c in _columns(con, source) if not c.startswith("_")]
    lower = {c.lower() for c in input_columns}
    plan = _Plan(con, profile, key)
    plan.add("c0", f"SELECT * FROM {source}")
    known = set(input_columns)
    for i, f in enumerate(spec.scratch, start=1):
        if f.name.lower() in lower:
            raise ProfileError(f"{f.where}: the input already has a column {f.name!r}; name it otherwise")
        _require_columns(f, known, files, profile, table)
        value, _ = _value_sql(f, profile.as_of, known)
        plan.add(f"c{i}", f"SELECT *, {value} AS {ident(f.name)} FROM c{i - 1}",
                 [(f.where, value, f"c{i - 1}")])
        known.add(f.name)
    last = f"c{len(spec.scratch)}"
    where_sql = f" WHERE {spec.filter}" if spec.filter else ""
    plan.add("kept", f"SELECT * FROM {last}{where_sql}",
             [(f"{spec.where}.filter", spec.filter, last)] if spec.filter else [])

    row_fields = [f for f in spec.fields if f.kind in ROW_KINDS]
    row_attrs = [f for f in spec.attributes if f.kind in ROW_KINDS]
    lookups = [f for f in spec.fields if f.kind == "lookup"]
    derived = [f for f in spec.fields if f.kind == "derived"]
    derived_attrs = [f for f in spec.attributes if f.kind == "derived"]
    for f in (*row_fields, *row_attrs):
        _require_columns(f, known, files, profile, table)
    # prefixed aliases first: DuckDB names are case-insensitive, so `industry` would shadow `Industry`
    select0, parts0, flags = [], [], []
    for f in row_fields:
        value, before = _value_sql(f, profile.as_of, known)
        select0.append(f"{value} AS {ident('__f_' + f.name)}")
        parts0.append((f.where, value, "kept"))
        if before is not None:
            select0.append(f"({before}) IS NULL AS {ident('__d_' + f.name)}")
            flags.append(f.name)
    for f in row_attrs:
        value, _ = _value_sql(f, profile.as_of, known)
        select0.append(f"{value} AS {ident('__a_' + f.name)}")
        parts0.append((f.where, value, "kept"))
    select0 += [f"{ident(f.name)} AS {ident('__s_' + f.name)}" for f in spec.scratch]
    plan.add("s0", f"SELECT {', '.join(select0 + ['_file', '_file_index', '_row'])} FROM kept", parts0)
    renamed = (
        [f"{ident('__f_' + f.name)} AS {ident(f.name)}" for f in row_fields]
        + [f"{ident('__s_' + f.name)} AS {ident(f.name)}" for f in spec.scratch]
        + [ident("__a_" + f.name) for f in row_attrs]
        + [ident("__d_" + n) for n in flags]
        + ["_file", "_file_index", "_row"]
    )
    plan.add("s1", f"SELECT {', '.join(renamed)} FROM s0")
    base = "s1"
    types = {c.name: c.type for c in contract.table(table).columns}
    if spec.group_by:
        _check_casts(con, plan.sql("SELECT * FROM s1"), table, profile, [f.name for f in row_fields])
        aggregated = [ident(g) for g in spec.group_by]
        for f in row_fields:
            if f.name in spec.group_by:
                continue
            v = ident(f.name)
            if f.agg in TYPED_AGGS:
                v = f"CAST({v} AS {types[f.name]})"
            agg = GROUP_AGGS[f.agg or "any_value"]  # a `value` is the same on every row
            aggregated.append(f"{agg.format(v=v)} AS {ident(f.name)}")
        for f in row_attrs:
            column = ident("__a_" + f.name)
            aggregated.append(f"{GROUP_AGGS[f.agg or 'any_value'].format(v=column)} AS {column}")
        aggregated += [
            "first(_file ORDER BY _file_index, _row) AS _file",
            "min(_file_index) AS _file_index",
            "first(_row ORDER BY _file_index, _row) AS _row",
        ]
        group = ", ".join(ident(g) for g in spec.group_by)
        plan.add("g", f"SELECT {', '.join(aggregated)} FROM s1 GROUP BY {group}")
        base = "g"

    joins, lookup_cols, lookup_flags = [], [], []
    for i, f in enumerate(lookups):
        lk = f.arg
        lk_source, _ = _temp_input(con, drop, profile.inputs[lk["input"]], f"lookup {lk['input']}", cache)
        if lk_source:
            lk_columns = set(_columns(con, lk_source))
            for col in (lk["key"], lk["value"]):
                if col not in lk_columns:
                    raise ProfileError(
                        f"{f.where}: lookup input {lk['input']!r} has no column {col!r}; columns: "
                        f"{', '.join(sorted(c for c in lk_columns if not c.startswith('_')))}"
                    )
            agg = LOOKUP_AGGS[lk.get("agg", "first")].format(v=ident(lk["value"]))
            k = f"nullif(trim(CAST({ident(lk['key'])} AS VARCHAR)), '')"
            plan.add(f"l{i}", f"SELECT {k} AS k, {agg} AS v FROM {lk_source} GROUP BY 1")
        else:  # the export has no such file (yet): the looked-up field is NULL, as for an unmatched key
            plan.add(f"l{i}", "SELECT CAST(NULL AS VARCHAR) AS k, NULL AS v WHERE false")
        joins.append(f"LEFT JOIN l{i} ON l{i}.k = CAST({base}.{ident(lk['match'])} AS VARCHAR)")
        value = f"l{i}.v"
        if lk.get("default") is not None:
            value = f"coalesce({value}, {literal(lk['default'])})"
            lookup_flags.append(f"(l{i}.k IS NULL) AS {ident('__d_' + f.name)}")
        lookup_cols.append(f"{value} AS {ident(f.name)}")
    extra = "".join(", " + c for c in lookup_cols + lookup_flags)
    plan.add("s2", f"SELECT {base}.*{extra} FROM {base} {' '.join(joins)}")
    stage3 = ["s2.*"] + [f"({f.arg}) AS {ident(f.name)}" for f in derived]
    stage3 += [f"({f.arg}) AS {ident('__a_' + f.name)}" for f in derived_attrs]
    plan.add("s3", f"SELECT {', '.join(stage3)} FROM s2",
             [(f.where, f.arg, "s2") for f in (*derived, *derived_attrs)])
    named = {f.name for f in spec.fields}
    out = [ident(c) if c in named else f"NULL AS {ident(c)}" for c in contract.table(table).column_names]
    out += [ident("__a_" + f.name) for f in spec.attributes]
    relation = f"_mapped_{slug(key.replace('/', '__')).replace('-', '_').replace('.', '_')}"
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {relation} AS "
            + plan.sql(f"SELECT {', '.join(out)}, _file, _row FROM s3 ORDER BY _file_index, _row")
        )
    except duckdb.Error as exc:
        raise ProfileError(
            f"profile {profile.name}, table {key} (from {', '.join(map(str, files)) or 'static rows'}): "
            f"{_first_line(exc)}"
        ) from exc
    _check_casts(con, relation, table, profile)
    defaults = {}
    for n in flags:
        defaults[n] = plan.count(f"s1 WHERE {ident('__d_' + n)}")
    for f in lookups:
        if f.arg.get("default") is not None:
            defaults[f.name] = plan.count(f"s2 WHERE {ident('__d_' + f.name)}")
    used: set[str] = set()
    for f in (*spec.scratch, *spec.fields, *spec.attributes):
        used |= {c.lower() for c in f.source_columns}
        if f.kind in ("expr",):
            used |= _sql_names(f.arg)
    used |= _sql_names(spec.filter or "")
    return TableReport(
        key,
        table,
        "static" if spec.input.static else "derived" if spec.group_by else "file",
        tuple(str(p) for p in files),
        plan.count("c0"),
        plan.count("kept"),
        con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0],
        tuple(c for c in input_columns if c.lower() not in used),
        defaults,
        tuple(f.name for f in spec.attributes),
        relation,
    )


def _require_columns(f: FieldSpec, known: set[str], files: list[Path], profile: Profile, table: str) -> None:
    if f.kind == "column" and f.arg not in known and not f.optional:
        where = files[0] if files else "the static table"
        raise ProfileError(
            f"{where}: column {f.arg!r} (for {table}.{f.name} in profile {profile.name}, {f.where}) not "
            f"found; columns: {', '.join(sorted(c for c in known if not c.startswith('_')))}"
        )


def mapped_sql(
    con: duckdb.DuckDBPyConnection, drop: Path, profile: Profile, key: str
) -> tuple[str, list[Path]] | None:
    """A SELECT of the profile's table `key` in contract column order (uncast) plus attribute columns,
    `_file` and `_row`; None if the drop has no input for it."""
    report = map_table(con, drop, profile, key)
    if report is None:
        return None
    return f"SELECT * FROM {report.relation}", [Path(p) for p in report.files]


# ------------------------------------------------------------------ materialisation


@dataclass(frozen=True)
class MappedTable:
    table: str  # the contract table
    path: Path | None  # the contract-shaped Parquet, None when the export has no input for the table
    rows: int
    inputs: tuple[str, ...]
    attributes: Path | None = None  # the table's custom attributes (ATTRIBUTES shape)
    report: TableReport | None = None


def _check_casts(
    con: duckdb.DuckDBPyConnection, relation: str, table: str, profile: Profile, only: list[str] | None = None
) -> None:
    t = contract.table(table)
    cols = [c for c in t.columns if only is None or c.name in only]
    if not cols:
        return
    source = relation if only is None else f"({relation})"
    bad = [
        f"(TRY_CAST({ident(c.name)} AS {c.type}) IS NULL AND {ident(c.name)} IS NOT NULL)" for c in cols
    ]
    failing = ", ".join(
        f"CASE WHEN {b} THEN {literal(c.name)} || '=' || CAST({ident(c.name)} AS VARCHAR) END"
        for c, b in zip(cols, bad, strict=True)
    )
    rows = con.execute(
        f"SELECT _file, _row, concat_ws('; ', {failing}) FROM {source} WHERE {' OR '.join(bad)} LIMIT 5"
    ).fetchall()
    if rows:
        types = {c.name: c.type for c in t.columns}
        detail = "; ".join(
            f"{file} row {row} (header is row 0): {v} does not fit {types[v.split('=')[0]]}"
            for file, row, vals in rows
            for v in vals.split("; ")
        )
        raise ProfileError(
            f"profile {profile.name}, table {table}: mapped values that do not fit the contract: {detail}"
        )


def missing_core(drop: Path, profile: Profile) -> str | None:
    """Why the export cannot be mapped at all (no input for the contract's opportunities), or None."""
    specs = [spec for spec in profile.tables.values() if spec.table == CORE_TABLE]
    if not specs:
        return None
    if any(s.input.static or input_files(drop, s.input) for s in specs):
        return None
    looked = ", ".join(f"{s.input.file!r}" for s in specs)
    return (
        f"{specs[0].where}: the export in {drop} has no file for {CORE_TABLE} (looked for {looked} "
        f"as a stem, glob or folder; files there: "
        f"{', '.join(sorted(p.name for p in drop.iterdir() if p.is_file())[:20]) or 'none'})"
    )


def materialise(
    drop: Path, profile: Profile, out_dir: Path, require_core: bool = False
) -> dict[str, MappedTable]:
    """Map every table of the profile found in `drop` into `out_dir/<table>.parquet` (contract types),
    and its custom attributes into `<table>.attributes.parquet`.

    The content is deterministic (one thread, rows in input order), and a file is only rewritten
    when its bytes would change, so re-materialising the same export is a no-op for landing.
    `require_core`: fail when the export has no input for opportunities (a whole export, not a page).
    """
    if require_core and (why := missing_core(drop, profile)):
        raise ProfileError(why)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, MappedTable] = {}
    with duckdb.connect() as con:
        con.execute("SET threads = 1")  # deterministic row groups and bytes
        cache: dict = {}
        for key, spec in profile.tables.items():
            table = spec.table
            try:
                report = map_table(con, drop, profile, key, cache)
            except duckdb.Error as exc:
                raise ProfileError(f"profile {profile.name}, table {key}: {_first_line(exc)}") from exc
            if report is None:
                results[key] = MappedTable(table, None, 0, ())
                continue
            cols = ", ".join(
                f"CAST({ident(c.name)} AS {c.type}) AS {ident(c.name)}" for c in contract.table(table).columns
            )
            stem = slug(key.replace("/", "__"))
            target = _write(con, f"SELECT {cols} FROM {report.relation}", out_dir / f"{stem}.parquet")
            attributes = None
            if spec.attributes:
                attributes = _write(con, attributes_sql(report), out_dir / f"{stem}.attributes.parquet")
            con.execute(f"DROP TABLE {report.relation}")
            results[key] = MappedTable(table, target, report.mapped, report.files, attributes, report)
    return results


def attributes_sql(report: TableReport) -> str:
    """The attribute rows of a mapped table in `ATTRIBUTES` shape, in input order; a NULL value
    is not stored (it reads back as NULL)."""
    id_column = contract.table(report.table).primary_key[0]
    cols = [c.name for c in ATTRIBUTES.columns]
    parts = [
        f"SELECT {literal(report.table)} AS {ident(cols[0])}, CAST({ident(id_column)} AS VARCHAR) AS "
        f"{ident(cols[1])}, {literal(name)} AS {ident(cols[2])}, CAST({ident('__a_' + name)} AS VARCHAR) "
        f"AS {ident(cols[3])}, {i} AS _attr, _file, _row FROM {report.relation} "
        f"WHERE {ident('__a_' + name)} IS NOT NULL"
        for i, name in enumerate(report.attributes)
    ]
    return (
        f"SELECT {', '.join(map(ident, cols))} FROM ({' UNION ALL '.join(parts)}) "
        f"ORDER BY _file, _row, _attr"
    )


def _write(con: duckdb.DuckDBPyConnection, select: str, target: Path) -> Path:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    con.execute(f"COPY ({select}) TO {literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
    if target.exists() and _sha(target) == _sha(tmp):
        tmp.unlink()
    else:
        tmp.replace(target)
    return target


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "source"


def write_manifest(out_dir: Path, profile: Profile, drop: Path, tables: dict[str, MappedTable]) -> Path:
    """A sidecar saying where each staged file came from (lineage of mapped rows) and the counts."""
    manifest = {
        "profile": profile.name,
        "profile_sha256": profile.fingerprint,
        "drop": str(drop),
        "tables": {
            k: {
                "table": m.table,
                "file": m.path.name,
                "rows": m.rows,
                "inputs": list(m.inputs),
                "attributes": m.attributes.name if m.attributes else None,
                "counts": counts(m.report) if m.report else None,
            }
            for k, m in tables.items()
            if m.path
        },
        "assumptions": profile.assumptions(),
    }
    path = out_dir / "lineage.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return path


def counts(report: TableReport) -> dict[str, int]:
    """Rows read, filtered out and mapped (the run log and `profile check` print them)."""
    return {"read": report.read, "filtered": report.filtered, "mapped": report.mapped}


def count_line(key: str, c: dict[str, int]) -> str:
    """`opportunities: 8,800 rows read, 0 filtered, 8,800 mapped` (one line per table)."""
    return f"{key}: {c['read']:,} rows read, {c['filtered']:,} filtered, {c['mapped']:,} mapped"

"""Mapping profiles: declarative YAML that maps a foreign export onto the raw contract.

A profile names, for each contract table it can fill, the input file(s) and how every contract
column is computed from the input's columns. Shipped profiles live in `profiles/<name>.yml`
(`salesforce`, `hubspot`, `maven`); a user passes their own file with `--profile path.yml`.
docs/sources.md documents the format; in short::

    name: maven
    as_of: 2017-12-31            # when the export was taken; `{as_of}` in values/defaults
    inputs:                      # optional: input files used only for lookups
      price_list: {file: products}
    tables:
      opportunities:
        file: sales_pipeline     # stem or glob under the drop folder; .csv, .parquet, .jsonl/.ndjson
        csv: {delimiter: ",", encoding: utf-8}
        fields:
          opportunity_id: opportunity_id                   # a source column, as is
          stage: {column: deal_stage, map: {Won: closed_won}, map_default: error}
          created_at: {column: engage_date, format: "%Y-%m-%d", default: "{as_of}"}
          currency: {value: USD}                           # a constant
          annual_revenue: {expr: 'revenue * 1000000', columns: [revenue]}  # DuckDB SQL over source columns
          list_amount: {lookup: {input: price_list, key: product, match: product_id, value: sales_price}}
          is_won: {derived: "stage = 'closed_won'"}        # DuckDB SQL over the mapped fields
          hire_date: {value: "2016-10-20", assumption: "the export has no hire dates"}

Fields are computed in three steps: source fields (`column`, `value`, `expr`, then `map`,
`format`, `default`), lookups (`lookup`, may use the source fields in `on`), derived fields
(`derived`, may use both). A contract column the profile does not name is NULL; a required one
must be named. `assumption` marks a value the export does not hold: it is reported, never hidden.

`materialise` writes each mapped table as a Parquet file in contract shape (contract types,
rows in input order) with deterministic content, so the same export materialised twice yields
byte-identical files and landing (idempotent by SHA-256) adds nothing the second time.
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
FIELD_KEYS = set(SOURCE_KINDS) | {"map", "map_default", "format", "default", "assumption", "trim"}
FIELD_KEYS |= {"columns", "optional"}
LOOKUP_AGGS = {
    "first": "arg_min({v}, _row)",
    "last": "arg_max({v}, _row)",
    "sum": "sum(TRY_CAST({v} AS DOUBLE))",
    "min": "min({v})",
    "max": "max({v})",
    "count": "count({v})",
}
CSV_KEYS = {"delimiter", "encoding", "quote", "escape", "header", "skip", "null"}
TABLE_KEYS = {"file", "csv", "fields", "date_range", "filter"}


class ProfileError(Exception):
    """A profile is malformed, or an input does not match it; the message names file, table and field."""


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

    @property
    def source_columns(self) -> tuple[str, ...]:
        return (self.arg,) if self.kind == "column" else self.columns


@dataclass(frozen=True)
class InputSpec:
    """Where rows come from: file(s) under the drop, or a generated day range."""

    file: str | None = None
    csv: dict[str, Any] = field(default_factory=dict)
    date_range: dict[str, str] | None = None  # {start, end, column}: one row per day, e.g. USD fx rates


@dataclass(frozen=True)
class TableSpec:
    table: str
    input: InputSpec
    fields: tuple[FieldSpec, ...]
    filter: str | None = None  # DuckDB SQL over source columns: which input rows belong to this table


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

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def assumptions(self) -> dict[str, str]:
        """`table.field` -> why the value is assumed rather than read (for run metadata and docs)."""
        return {
            f"{t}.{f.name}": f.assumption
            for t, spec in self.tables.items()
            for f in spec.fields
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
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
        raise ProfileError(f"{where}: a profile needs a `tables:` mapping of contract table -> spec")
    unknown = set(doc) - {"name", "description", "as_of", "inputs", "tables", "incremental"}
    if unknown:
        raise ProfileError(f"{where}: unknown top-level key(s) {sorted(unknown)}")
    as_of = str(doc["as_of"]) if doc.get("as_of") is not None else None
    inputs = {n: _input(spec, f"{where}: inputs.{n}") for n, spec in (doc.get("inputs") or {}).items()}
    tables = {}
    for key, spec in doc["tables"].items():
        name = str(key).split("/")[0]  # `activities/tasks` and `activities/events` both fill activities
        if name not in contract.TABLES_BY_NAME:
            raise ProfileError(
                f"{where}: {name!r} is not a raw contract table ({', '.join(contract.TABLE_NAMES)})"
            )
        tables[str(key)] = _table(name, spec, inputs, f"{where}: tables.{key}")
    incremental = doc.get("incremental") or {}
    for obj, spec in incremental.items():
        if not isinstance(spec, dict) or set(spec) != {"changed_at", "id"}:
            raise ProfileError(f"{where}: incremental.{obj} needs exactly changed_at and id (column names)")
    return Profile(
        str(doc.get("name") or Path(where).stem),
        str(doc.get("description") or ""),
        tables,
        inputs,
        as_of,
        text or yaml.safe_dump(doc, sort_keys=True),
        incremental,
    )


def _input(spec: Any, where: str) -> InputSpec:
    if not isinstance(spec, dict):
        raise ProfileError(f"{where}: expected a mapping")
    csv = spec.get("csv") or {}
    if set(csv) - CSV_KEYS:
        raise ProfileError(
            f"{where}: unknown csv option(s) {sorted(set(csv) - CSV_KEYS)}; known: {sorted(CSV_KEYS)}"
        )
    date_range = spec.get("date_range")
    if (spec.get("file") is None) == (date_range is None):
        raise ProfileError(f"{where}: give exactly one of `file` or `date_range`")
    if date_range is not None and set(date_range) != {"start", "end", "column"}:
        raise ProfileError(f"{where}: date_range needs start, end and column")
    return InputSpec(
        spec.get("file"), dict(csv), {k: str(v) for k, v in date_range.items()} if date_range else None
    )


def _table(name: str, spec: Any, inputs: dict[str, InputSpec], where: str) -> TableSpec:
    if not isinstance(spec, dict) or not isinstance(spec.get("fields"), dict):
        raise ProfileError(f"{where}: needs `file` (or `date_range`) and `fields`")
    if set(spec) - TABLE_KEYS:
        raise ProfileError(f"{where}: unknown key(s) {sorted(set(spec) - TABLE_KEYS)}")
    t = contract.table(name)
    fields = []
    for fname, fspec in spec["fields"].items():
        if fname not in t.column_names:
            raise ProfileError(
                f"{where}.fields: {fname!r} is not a column of {name} ({', '.join(t.column_names)})"
            )
        fields.append(_field(fname, fspec, inputs, f"{where}.fields.{fname}"))
    required = [c.name for c in t.columns if not c.nullable and c.name not in spec["fields"]]
    if required:
        raise ProfileError(f"{where}: required contract column(s) not mapped: {', '.join(required)}")
    return TableSpec(
        name,
        _input({k: spec.get(k) for k in ("file", "csv", "date_range")}, where),
        tuple(fields),
        spec.get("filter"),
    )


def _field(name: str, spec: Any, inputs: dict[str, InputSpec], where: str) -> FieldSpec:
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
            raise ProfileError(f"{where}: lookup needs input, key, match and value (and optional agg)")
        if lk["input"] not in inputs:
            raise ProfileError(f"{where}: lookup input {lk['input']!r} is not declared under `inputs`")
        if lk.get("agg", "first") not in LOOKUP_AGGS:
            raise ProfileError(f"{where}: lookup agg must be one of {', '.join(LOOKUP_AGGS)}")
    if kind in ("lookup", "derived") and ({"map", "format", "default"} & set(spec)):
        raise ProfileError(f"{where}: map/format/default apply to column, value and expr fields only")
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


def _input_sql(
    con: duckdb.DuckDBPyConnection, drop: Path, spec: InputSpec, where: str
) -> tuple[str, list[Path]]:
    """SQL for the input's rows with `_file` and `_row` (1-based within the file), and its files."""
    if spec.date_range:
        dr = spec.date_range
        return (
            f"SELECT CAST(d AS DATE) AS {ident(dr['column'])}, 'date_range' AS _file, 0 AS _file_index, "
            f"row_number() OVER (ORDER BY d) AS _row FROM range(CAST({literal(dr['start'])} AS DATE), "
            f"CAST({literal(dr['end'])} AS DATE) + INTERVAL 1 DAY, INTERVAL 1 DAY) t(d)",
            [],
        )
    files = input_files(drop, spec)
    if not files:
        return "", []
    parts = []
    for i, path in enumerate(files):
        reader = _reader(path, spec.csv)
        try:
            con.execute(f"DESCRIBE SELECT * FROM {reader}")
        except duckdb.Error as exc:
            raise ProfileError(f"{path}: cannot be read for {where}: {exc}") from exc
        parts.append(
            f"SELECT *, {literal(path.name)} AS _file, {i} AS _file_index, "
            f"row_number() OVER () AS _row FROM {reader}"
        )
    return " UNION ALL BY NAME ".join(f"({p})" for p in parts), files


def _value_sql(f: FieldSpec, as_of: str | None, columns: set[str]) -> str:
    def fill(v: Any) -> Any:
        if isinstance(v, str) and "{as_of}" in v:
            if as_of is None:
                raise ProfileError(f"field {f.name} uses {{as_of}} but the profile has no `as_of`")
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
    if f.map:
        whens = " ".join(
            f"WHEN CAST({sql} AS VARCHAR) = {literal(str(k))} THEN {literal(v)}" for k, v in f.map.items()
        )
        source = f"column {f.arg}" if f.kind == "column" else f"the {f.kind} of {f.name}"
        # names the file, the row and the column (`_file` and `_row` are columns of every input)
        unmapped = (
            "error(_file || ' row ' || CAST(_row AS VARCHAR) || "
            + literal(f" (header is row 0), {source}: unmapped value ")
            + f" || CAST({sql} AS VARCHAR) || "
            + literal(f" (not in the map for {f.name}; map_default: error)")
            + ")"
        )
        otherwise = {"keep": sql, "null": "NULL", "error": unmapped}
        sql = f"CASE WHEN {sql} IS NULL THEN NULL {whens} ELSE {otherwise[f.map_default]} END"
    if f.format == "iso8601":  # 2024-01-05T10:11:12.000+0000 / ...Z / ...+02:00 -> naive UTC
        sql = f"timezone('UTC', CAST(CAST({sql} AS VARCHAR) AS TIMESTAMPTZ))"
    elif f.format:
        conv = f"strptime(CAST({sql} AS VARCHAR), {literal(f.format)})"
        sql = f"timezone('UTC', {conv})" if "%z" in f.format or "%Z" in f.format else conv
    if f.default is not None:
        sql = f"coalesce({sql}, {literal(fill(f.default))})"
    return sql


def mapped_sql(
    con: duckdb.DuckDBPyConnection, drop: Path, profile: Profile, key: str
) -> tuple[str, list[Path]] | None:
    """A SELECT producing the profile's table `key` in contract column order (uncast) plus `_file`, `_row`;
    None if the drop has no input for it."""
    spec = profile.tables[key]
    table = spec.table
    where = f"profile {profile.name}, table {key}"
    source, files = _input_sql(con, drop, spec.input, where)
    if not source:
        return None
    columns = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM ({source})").fetchall()}
    for f in spec.fields:
        if f.kind == "column" and f.arg not in columns and not f.optional:
            raise ProfileError(
                f"{files[0]}: column {f.arg!r} (for {table}.{f.name} in profile {profile.name}) not found; "
                f"columns: {', '.join(sorted(c for c in columns if not c.startswith('_')))}"
            )
    src_fields = [f for f in spec.fields if f.kind in ("column", "value", "expr")]
    lookups = [f for f in spec.fields if f.kind == "lookup"]
    derived = [f for f in spec.fields if f.kind == "derived"]
    where_sql = f" WHERE {spec.filter}" if spec.filter else ""
    # prefixed aliases first: DuckDB names are case-insensitive, so `industry` would shadow `Industry`
    stage1 = ", ".join(
        [f"{_value_sql(f, profile.as_of, columns)} AS {ident('__f_' + f.name)}" for f in src_fields]
        + ["_file", "_file_index", "_row"]
    )
    renamed = ", ".join(
        [f"{ident('__f_' + f.name)} AS {ident(f.name)}" for f in src_fields]
        + ["_file", "_file_index", "_row"]
    )
    ctes = [f"s0 AS (SELECT {stage1} FROM ({source}) src{where_sql})", f"s1 AS (SELECT {renamed} FROM s0)"]
    joins, lookup_cols = [], []
    for i, f in enumerate(lookups):
        lk = f.arg
        lk_source, _ = _input_sql(con, drop, profile.inputs[lk["input"]], f"lookup {lk['input']}")
        if lk_source:
            agg = LOOKUP_AGGS[lk.get("agg", "first")].format(v=ident(lk["value"]))
            key = f"nullif(trim(CAST({ident(lk['key'])} AS VARCHAR)), '')"
            ctes.append(f"l{i} AS (SELECT {key} AS k, {agg} AS v FROM ({lk_source}) GROUP BY 1)")
        else:  # the export has no such file (yet): the looked-up field is NULL, as for an unmatched key
            ctes.append(f"l{i} AS (SELECT CAST(NULL AS VARCHAR) AS k, NULL AS v WHERE false)")
        joins.append(f"LEFT JOIN l{i} ON l{i}.k = CAST(s1.{ident(lk['match'])} AS VARCHAR)")
        lookup_cols.append(f"l{i}.v AS {ident(f.name)}")
    ctes.append(f"s2 AS (SELECT s1.*{''.join(', ' + c for c in lookup_cols)} FROM s1 {' '.join(joins)})")
    stage3 = ", ".join(["s2.*"] + [f"({f.arg}) AS {ident(f.name)}" for f in derived])
    ctes.append(f"s3 AS (SELECT {stage3} FROM s2)")
    named = {f.name for f in spec.fields}
    out = ", ".join(
        ident(c) if c in named else f"NULL AS {ident(c)}" for c in contract.table(table).column_names
    )
    return f"WITH {', '.join(ctes)} SELECT {out}, _file, _row FROM s3 ORDER BY _file_index, _row", files


# ------------------------------------------------------------------ materialisation


@dataclass(frozen=True)
class MappedTable:
    table: str  # the contract table
    path: Path | None  # the contract-shaped Parquet, None when the export has no input for the table
    rows: int
    inputs: tuple[str, ...]


def _check_casts(con: duckdb.DuckDBPyConnection, relation: str, table: str, profile: Profile) -> None:
    t = contract.table(table)
    bad = [
        f"(TRY_CAST({ident(c.name)} AS {c.type}) IS NULL AND {ident(c.name)} IS NOT NULL)" for c in t.columns
    ]
    failing = ", ".join(
        f"CASE WHEN {b} THEN {literal(c.name)} || '=' || CAST({ident(c.name)} AS VARCHAR) END"
        for c, b in zip(t.columns, bad, strict=True)
    )
    rows = con.execute(
        f"SELECT _file, _row, concat_ws('; ', {failing}) FROM {relation} WHERE {' OR '.join(bad)} LIMIT 5"
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


def materialise(drop: Path, profile: Profile, out_dir: Path) -> dict[str, MappedTable]:
    """Map every table of the profile found in `drop` into `out_dir/<table>.parquet` (contract types).

    The content is deterministic (one thread, rows in input order), and a file is only rewritten
    when its bytes would change, so re-materialising the same export is a no-op for landing.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, MappedTable] = {}
    with duckdb.connect() as con:
        con.execute("SET threads = 1")  # deterministic row groups and bytes
        for key, spec in profile.tables.items():
            table = spec.table
            try:
                rendered = mapped_sql(con, drop, profile, key)
            except duckdb.Error as exc:
                raise ProfileError(f"profile {profile.name}, table {key}: {exc}") from exc
            if rendered is None:
                results[key] = MappedTable(table, None, 0, ())
                continue
            sql, files = rendered
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE mapped AS {sql}")
            except duckdb.Error as exc:
                detail = str(exc).removeprefix("Invalid Input Error: ").splitlines()[0][:500]
                raise ProfileError(
                    f"profile {profile.name}, table {key} (from {', '.join(map(str, files))}): {detail}"
                ) from exc
            _check_casts(con, "mapped", table, profile)
            cols = ", ".join(
                f"CAST({ident(c.name)} AS {c.type}) AS {ident(c.name)}" for c in contract.table(table).columns
            )
            target = out_dir / f"{slug(key.replace('/', '__'))}.parquet"
            tmp = out_dir / f".{target.name}.{os.getpid()}.tmp"
            con.execute(
                f"COPY (SELECT {cols} FROM mapped) TO {literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd)"
            )
            rows = con.execute("SELECT count(*) FROM mapped").fetchone()[0]
            if target.exists() and _sha(target) == _sha(tmp):
                tmp.unlink()
            else:
                tmp.replace(target)
            results[key] = MappedTable(table, target, rows, tuple(str(p) for p in files))
    return results


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "source"


def write_manifest(out_dir: Path, profile: Profile, drop: Path, tables: dict[str, MappedTable]) -> Path:
    """A sidecar saying where each staged file came from (lineage of mapped rows)."""
    manifest = {
        "profile": profile.name,
        "profile_sha256": profile.fingerprint,
        "drop": str(drop),
        "tables": {
            k: {"table": m.table, "file": m.path.name, "rows": m.rows, "inputs": list(m.inputs)}
            for k, m in tables.items()
            if m.path
        },
        "assumptions": profile.assumptions(),
    }
    path = out_dir / "lineage.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return path

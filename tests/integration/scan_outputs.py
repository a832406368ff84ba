"""Find a needle (a canary secret, a personal value) anywhere the pipeline writes, decoded.

Raw bytes are not enough: DuckDB and Parquet compress strings, Dagster stores snapshots as
zlib-compressed blobs in SQLite, and metadata embeds charts as base64 data URIs. So each file is
read the way its readers read it, and the raw bytes are searched as well:

- DuckDB files: every column of every table and view, cast to text;
- Parquet files: every column, through DuckDB;
- SQLite files (Dagster run, event log and schedule storage): every cell, zlib blobs decompressed;
- gzip files decompressed; every text's base64 data URIs decoded;
- every file's raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import re
import sqlite3
import urllib.parse
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

DATA_URI = re.compile(rb"base64,([A-Za-z0-9+/=]{16,})")


def variants(needle: str) -> list[bytes]:
    """The needle as stored raw, URL-encoded and JSON-escaped."""
    forms = {needle, urllib.parse.quote(needle, safe=""), urllib.parse.quote_plus(needle)}
    return sorted(f.encode() for f in forms)


@dataclass
class Scan:
    needles: list[str]
    hits: list[str] = field(default_factory=list)  # "where: needle"
    files: int = 0
    duckdb_columns: int = 0
    parquet_columns: int = 0
    sqlite_cells: int = 0
    texts: int = 0

    def __post_init__(self) -> None:
        self._forms = [(needle, variants(needle)) for needle in self.needles]

    def _check_bytes(self, data: bytes, where: str) -> None:
        for needle, forms in self._forms:
            if any(v in data for v in forms):
                self.hits.append(f"{where}: {needle}")
        for blob in DATA_URI.findall(data):
            try:
                decoded = base64.b64decode(blob + b"=" * (-len(blob) % 4))
            except (binascii.Error, ValueError):
                continue
            self._check_bytes(decoded, f"{where} (base64 data URI)")

    def text(self, text: str, where: str) -> None:
        """Search a text that is not a file (captured output, a serialized event)."""
        self.texts += 1
        self._check_bytes(text.encode("utf-8", "replace"), where)

    def tree(self, root: Path) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            self.file(path)

    def file(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed since listed (a temporary file of a concurrent dbt run)
            return
        self.files += 1
        self._check_bytes(data, str(path))
        if data[:2] == b"\x1f\x8b":
            self._check_bytes(gzip.decompress(data), f"{path} (gunzipped)")
        if data.startswith(b"SQLite format 3\x00"):
            self._sqlite(path)
        elif path.suffix == ".parquet" or data[:4] == b"PAR1":
            self._parquet(path)
        elif data[8:12] == b"DUCK" or path.suffix == ".duckdb":
            self._duckdb(path)

    def _columns_hit(self, con: duckdb.DuckDBPyConnection, relation: str, columns: list[str]) -> list[str]:
        """Columns of `relation` holding a needle: one pass over all columns, then the ones hit."""
        if not columns:
            return []
        texts = [f'CAST("{c.replace(chr(34), chr(34) * 2)}" AS VARCHAR)' for c in columns]
        needles = "[" + ", ".join("'" + n.replace("'", "''") + "'" for n in self.needles) + "]"
        anywhere = con.execute(
            "SELECT list_distinct(flatten(list("
            f"list_filter({needles}, lambda n: contains(row_text, n))))) FROM "
            f"(SELECT concat_ws(chr(31), {', '.join(texts)}) AS row_text FROM {relation})"
        ).fetchone()[0]
        found = []
        for needle in anywhere or []:
            for col, text in zip(columns, texts, strict=True):
                sql = f"SELECT count(*) FROM {relation} WHERE contains({text}, ?)"
                n = con.execute(sql, [needle]).fetchone()[0]
                if n:
                    found.append(f"{col} ({n} rows): {needle}")
        return found

    def _duckdb(self, path: Path) -> None:
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            if path.suffix == ".duckdb":  # a warehouse we cannot read is a scan failure, not a pass
                self.hits.append(f"{path}: could not open ({exc})")
            return  # a temporary or foreign file: its raw bytes were searched
        with con:
            relations = con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() "
                "WHERE database_name = current_database() "
                "UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
                "WHERE database_name = current_database() AND NOT internal"
            ).fetchall()
            for schema, name in relations:
                cols = [r[0] for r in con.execute(f'DESCRIBE "{schema}"."{name}"').fetchall()]
                self.duckdb_columns += len(cols)
                for hit in self._columns_hit(con, f'"{schema}"."{name}"', cols):
                    self.hits.append(f"{path} {schema}.{name}.{hit}")

    def _parquet(self, path: Path) -> None:
        with duckdb.connect() as con:
            relation = "read_parquet('" + str(path).replace("'", "''") + "')"
            cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
            self.parquet_columns += len(cols)
            for hit in self._columns_hit(con, relation, cols):
                self.hits.append(f"{path} {hit}")

    def _sqlite(self, path: Path) -> None:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in con.execute(f'SELECT * FROM "{table}"'):
                    for cell in row:
                        self.sqlite_cells += 1
                        self._sqlite_cell(cell, f"{path} table {table}")
        finally:
            con.close()

    def _sqlite_cell(self, cell, where: str) -> None:
        if isinstance(cell, str):
            self._check_bytes(cell.encode(), where)
        elif isinstance(cell, bytes):
            self._check_bytes(cell, where)
            with contextlib.suppress(zlib.error):
                self._check_bytes(zlib.decompress(cell), f"{where} (zlib)")


def scan(needles: Iterable[str], roots: Iterable[Path] = (), texts: dict[str, str] | None = None) -> Scan:
    result = Scan(list(needles))
    for root in roots:
        result.tree(root) if root.is_dir() else result.file(root)
    for where, text in (texts or {}).items():
        result.text(text, where)
    return result

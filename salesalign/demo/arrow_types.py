"""Map the raw contract's DuckDB type strings onto pyarrow types, so every demo file matches the contract.

The contract's tables are declared in salesalign/contract/tables.py.
"""

from __future__ import annotations

import re

import pyarrow as pa

from salesalign.contract import table

_SIMPLE: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
}
_DECIMAL = re.compile(r"DECIMAL\((\d+)\s*,\s*(\d+)\)")


def arrow_type(duckdb_type: str) -> pa.DataType:
    """pyarrow type for a contract (DuckDB) type string such as ``DECIMAL(18,2)``."""
    t = duckdb_type.strip().upper()
    if t in _SIMPLE:
        return _SIMPLE[t]
    m = _DECIMAL.fullmatch(t)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    raise ValueError(f"no pyarrow mapping for contract type {duckdb_type!r}")


def arrow_schema(table_name: str) -> pa.Schema:
    """The pyarrow schema of a contract table: its columns in order, types and nullability."""
    t = table(table_name)
    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in t.columns])

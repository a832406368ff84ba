"""What the source delivered, for the brief's coverage section: per contract table the rows landed and
quarantined (or that the source has no such table), and the assumptions its mapping profile declares.

Read from the warehouse only: the raw tables, `raw_quarantine.quarantined_rows` and the latest entry of
`raw._sources`, where the extract stage logs what each source said about itself when it was made ready
(`salesalign.extract.landing.record_source`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb

from salesalign import contract
from salesalign.extract.landing import RAW_SCHEMA, SOURCES


@dataclass(frozen=True)
class TableDelivery:
    table: str
    domain: str
    rows: int  # landed into raw, every version
    quarantined: int  # of those, rows held back with a reason

    @property
    def delivered(self) -> bool:
        return self.rows > 0


@dataclass(frozen=True)
class Delivery:
    """What the source delivered, and what its mapping assumed where the export says nothing."""

    source: str | None  # the source's name (demo, files, files+<profile>, ...); None: not logged
    described_at: str | None
    tables: list[TableDelivery]
    assumptions: dict[str, str] = field(default_factory=dict)  # `<table>.<field>` -> why

    @property
    def missing(self) -> list[str]:
        return [t.table for t in self.tables if not t.delivered]


def _present(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    return {
        t
        for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() "
            "WHERE schema_name = ? AND database_name = current_database()",
            [schema],
        ).fetchall()
    }


def _assumptions(described: object) -> dict[str, str]:
    """Every `assumptions` mapping in a source description (a combined source nests one per source)."""
    found: dict[str, str] = {}
    if isinstance(described, dict):
        for key, value in described.items():
            if key == "assumptions" and isinstance(value, dict):
                found.update({str(k): str(v) for k, v in value.items()})
            else:
                found.update(_assumptions(value))
    return found


def read_delivery(con: duckdb.DuckDBPyConnection) -> Delivery | None:
    """The delivery of the warehouse's source; None when nothing has been landed (no raw schema)."""
    raw = _present(con, RAW_SCHEMA)
    if not raw:
        return None
    quarantined = (
        dict(
            con.execute(
                "SELECT table_name, count(*) FROM raw_quarantine.quarantined_rows GROUP BY 1"
            ).fetchall()
        )
        if "quarantined_rows" in _present(con, "raw_quarantine")
        else {}
    )
    tables = [
        TableDelivery(
            t.name,
            t.domain,
            con.execute(f"SELECT count(*) FROM {RAW_SCHEMA}.{t.name}").fetchone()[0] if t.name in raw else 0,
            int(quarantined.get(t.name, 0)),
        )
        for t in contract.TABLES
    ]
    logged = (
        con.execute(
            f"SELECT source, described_at, description FROM {SOURCES} ORDER BY described_at DESC LIMIT 1"
        ).fetchone()
        if SOURCES.split(".", 1)[1] in raw
        else None
    )
    if logged is None:
        return Delivery(None, None, tables)
    source, at, description = logged
    return Delivery(source, f"{at:%Y-%m-%d %H:%M} UTC", tables, _assumptions(json.loads(description)))

"""Incremental extraction watermarks, persisted in the warehouse (`raw._watermarks`).

A watermark is a change timestamp for one object of one source, plus the record versions
(id, timestamp) already extracted at or after it. The next extraction asks for records changed at
or after the timestamp and drops those versions, so records sharing a timestamp across a page
boundary, or changed while the extraction paged through, are neither skipped (gap) nor extracted
twice (duplicate). The watermark advances only after the page it covers is safely on disk, so an
interrupted extraction resumes where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

WATERMARKS = "raw._watermarks"


def parse_ts(value: str) -> datetime:
    """An ISO-8601 change timestamp (`...+0000`, `...Z`) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class Watermark:
    """Extract changes at or after `changed_at`, skipping the (id, changed_at) versions in `seen`."""

    changed_at: str | None = None  # as the source spells it
    seen: tuple[tuple[str, str], ...] = ()  # versions already extracted with a timestamp >= changed_at
    pages: int = 0  # pages extracted so far (names the next page file)

    def already_seen(self, record_id: str, changed_at: str) -> bool:
        return (record_id, changed_at) in set(self.seen)

    def advance(self, records: list[tuple[str, str]], cutoff: datetime) -> Watermark:
        """The watermark after a page of (id, changed_at) versions has been written.

        A record changed while the extraction pages through (after `cutoff`, the extraction start
        minus a clock-skew margin) may appear out of order, so it never moves the watermark: the
        watermark only reaches timestamps every unseen record must be at or after. Every version
        written at or after the watermark is remembered in `seen`, so a resume never repeats one.
        """
        if not records:
            return self
        settled = [ts for _, ts in records if parse_ts(ts) <= cutoff]
        mark = self.changed_at
        if settled:
            top = max(settled, key=parse_ts)
            if mark is None or parse_ts(top) > parse_ts(mark):
                mark = top
        versions = set(self.seen) | set(records)
        if mark is not None:
            versions = {(i, ts) for i, ts in versions if parse_ts(ts) >= parse_ts(mark)}
        return Watermark(mark, tuple(sorted(versions)), self.pages + 1)


class WatermarkStore:
    """Reads and writes watermarks in the warehouse; each write is its own short transaction."""

    def __init__(self, warehouse: Path):
        self.warehouse = Path(warehouse)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        self.warehouse.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.warehouse))
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(
            f"""CREATE TABLE IF NOT EXISTS {WATERMARKS} (
                source VARCHAR NOT NULL, object VARCHAR NOT NULL, changed_at VARCHAR,
                seen VARCHAR NOT NULL, pages BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL,
                PRIMARY KEY (source, object))"""
        )
        return con

    def get(self, source: str, obj: str) -> Watermark:
        with self._connect() as con:
            row = con.execute(
                f"SELECT changed_at, seen, pages FROM {WATERMARKS} WHERE source = ? AND object = ?",
                [source, obj],
            ).fetchone()
        return Watermark(row[0], tuple(tuple(v) for v in json.loads(row[1])), row[2]) if row else Watermark()

    def set(self, source: str, obj: str, mark: Watermark) -> None:
        with self._connect() as con:
            con.execute(
                f"INSERT OR REPLACE INTO {WATERMARKS} VALUES (?, ?, ?, ?, ?, ?)",
                [
                    source,
                    obj,
                    mark.changed_at,
                    json.dumps([list(v) for v in mark.seen]),
                    mark.pages,
                    datetime.now(UTC).replace(tzinfo=None),
                ],
            )

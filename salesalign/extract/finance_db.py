"""Finance tables from any SQLAlchemy database (PostgreSQL, SQLite, ...), mapped by a profile.

The profile names the database tables (`file: erp.ar_invoices`) and columns it reads, exactly like an
export profile, plus an `incremental:` section naming each table's change column and id column:

    incremental:
      erp.ar_invoices: {changed_at: updated_at, id: invoice_no}

Names come only from the profile and are checked against an allowlist: they must be plain SQL
identifiers and must exist in the database's own catalogue (reflected by SQLAlchemy), so nothing
from a profile is pasted into SQL. Queries are built with SQLAlchemy Core; every value (the
watermark, the keyset position) is a bound parameter. Tables with an `incremental` entry are read
in keyset pages since their watermark; the others are read whole (a snapshot page, landed again only
when its content changes). The database URL, with its password, comes from an environment
variable and is masked out of every error.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa

from salesalign.extract.sources import SourceError
from salesalign.extract.watermarks import Watermark, parse_ts

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class FinanceDbError(SourceError):
    """The database or a profile name is not usable; the message names the table and column."""


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)  # exact: the mapping casts to DECIMAL
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


@dataclass
class FinanceDbExtractor:
    """Pages of rows of allowlisted tables, keyset-paginated by (changed_at, id) since a watermark."""

    url: str = field(repr=False)
    incremental_columns: dict[str, dict[str, str]] = field(default_factory=dict)
    page_size: int = 5000
    _engine: sa.Engine | None = field(default=None, init=False, repr=False)
    _tables: dict[str, sa.Table] = field(default_factory=dict, init=False, repr=False)
    _version_columns: tuple[str, str] = field(default=("", ""), init=False, repr=False)

    def _mask(self, text: str) -> str:
        try:
            password = sa.make_url(self.url).password
        except Exception:  # a URL SQLAlchemy cannot parse: mask all of it
            return text.replace(self.url, "***")
        text = text.replace(self.url, "***")
        if not password:
            return text
        # the password as written in the URL (percent-encoded) and as the driver sees it
        for form in (urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password), password):
            text = text.replace(form, "***")
        return text

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            try:
                self._engine = sa.create_engine(self.url, pool_pre_ping=True)
            except Exception as exc:
                raise FinanceDbError(f"finance database URL is not usable: {self._mask(str(exc))}") from None
        return self._engine

    def table(self, name: str) -> sa.Table:
        """The reflected table `name` (`table` or `schema.table`), after checking the name."""
        if name not in self._tables:
            parts = name.split(".")
            if len(parts) > 2 or not all(IDENTIFIER.match(p) for p in parts):
                raise FinanceDbError(
                    f"{name!r} is not an allowed table name (plain identifiers, optional schema)"
                )
            schema, table = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
            try:
                inspector = sa.inspect(self.engine)
                if table not in inspector.get_table_names(schema=schema) + inspector.get_view_names(
                    schema=schema
                ):
                    raise FinanceDbError(f"table {name!r} does not exist in the finance database")
                self._tables[name] = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=self.engine)
            except sa.exc.SQLAlchemyError as exc:
                raise FinanceDbError(f"cannot read table {name!r}: {self._mask(str(exc))}") from None
        return self._tables[name]

    def _column(self, table: sa.Table, name: str, obj: str) -> sa.Column:
        if not IDENTIFIER.match(name) or name not in table.c:
            raise FinanceDbError(
                f"column {name!r} of {obj} is not allowed: it is not a column of the table "
                f"(columns: {', '.join(table.c.keys())})"
            )
        return table.c[name]

    def incremental(self, obj: str) -> bool:
        return obj in self.incremental_columns

    def record_version(self, record: dict) -> tuple[str, str]:
        """(id, changed_at) of a record of the object being paged (set by `pages`)."""
        id_col, changed_col = self._version_columns
        return str(record[id_col]), str(record[changed_col])

    def pages(self, obj: str, fields: list[str], mark: Watermark) -> Iterator[list[dict]]:
        table = self.table(obj)
        spec = self.incremental_columns.get(obj)
        names = list(dict.fromkeys([*fields, *(spec.values() if spec else [])]))
        cols = [self._column(table, n, obj) for n in names]
        query = sa.select(*cols)
        if not spec:
            yield from self._run(query, obj)
            return
        changed, key = table.c[spec["changed_at"]], table.c[spec["id"]]
        self._version_columns = (spec["id"], spec["changed_at"])
        self._check_keyset(obj, changed, key, mark)
        query = query.order_by(changed, key).limit(self.page_size)
        position = None  # (changed_at, id) of the last row read: keyset paging, no OFFSET
        while True:
            q = query
            if position is not None:
                q = q.where(sa.or_(changed > position[0], sa.and_(changed == position[0], key > position[1])))
            elif mark.changed_at:
                q = q.where(changed >= self._bind_value(changed, mark.changed_at))
            rows = next(self._run(q, obj), [])
            if not rows:
                return
            yield [{k: _plain(v) for k, v in r.items()} for r in rows]
            position = (rows[-1][spec["changed_at"]], rows[-1][spec["id"]])
            if len(rows) < self.page_size:
                return

    def _check_keyset(self, obj: str, changed: sa.Column, key: sa.Column, mark: Watermark) -> None:
        """Keyset paging reads every row exactly once only if (changed_at, id) is non-null and unique:
        a NULL is never read, and a repeated pair split by a page boundary loses a row. Such a table
        fails before any page is read (the watermark does not move)."""
        nulls = sa.select(sa.func.count()).select_from(changed.table)
        nulls = nulls.where(sa.or_(changed.is_(None), key.is_(None)))
        [[count]] = [list(r.values()) for r in list(self._run(nulls, obj))[0]]
        if count:
            raise FinanceDbError(
                f"{obj}: {count} row(s) with a NULL {changed.name} or {key.name}; incremental paging by "
                f"({changed.name}, {key.name}) cannot read them: nothing of {obj} was extracted"
            )
        n = sa.func.count().label("n")
        dupes = sa.select(key, changed, n).group_by(key, changed).having(sa.func.count() > 1)
        if mark.changed_at:
            dupes = dupes.where(changed >= self._bind_value(changed, mark.changed_at))
        [rows] = list(self._run(dupes.order_by(changed, key).limit(3), obj))
        if rows:
            shown = "; ".join(f"{key.name}={r[key.name]} at {r[changed.name]} x{r['n']}" for r in rows)
            raise FinanceDbError(
                f"{obj}: ({changed.name}, {key.name}) is not unique ({shown}); incremental paging needs "
                f"one row per id and change time: nothing of {obj} was extracted"
            )

    def _bind_value(self, column: sa.Column, iso: str):
        moment = parse_ts(iso).replace(tzinfo=None)
        python_type = getattr(column.type, "python_type", None)
        try:
            return moment.date() if python_type is date else moment
        except NotImplementedError:
            return moment

    def _run(self, query, obj: str) -> Iterator[list[dict]]:
        try:
            with self.engine.connect() as con:
                yield [dict(r._mapping) for r in con.execute(query)]
        except sa.exc.SQLAlchemyError as exc:
            raise FinanceDbError(f"reading {obj}: {self._mask(str(exc).splitlines()[0])}") from None

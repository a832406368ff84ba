"""The currency of what is published: the marts' own.

Every money column of the marts, and so of the analytics tables computed from them, is in the
reporting currency the marts were built in (`marts.fct_deal_margin.reporting_currency`). The brief
and the exports manifest read it from there rather than from the settings, so they cannot disagree
with the tables they show.
"""

from __future__ import annotations

import duckdb

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "AUD": "A$"}


def symbol(currency: str) -> str:
    """What precedes an amount in `currency`: its symbol, else its ISO code and a space (`CHF 1,200`)."""
    return SYMBOLS.get(currency, f"{currency} ")


def marts_currency(con: duckdb.DuckDBPyConnection) -> str | None:
    """The reporting currency of the marts; None while there is no closed deal in them (or no marts).
    Raises ValueError if the deals are in more than one: the marts must not mix currencies."""
    built = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'marts' AND table_name = 'fct_deal_margin'"
    ).fetchone()[0]
    if not built:
        return None
    found = [c for (c,) in con.execute(
        "SELECT DISTINCT reporting_currency FROM marts.fct_deal_margin ORDER BY 1"
    ).fetchall()]
    if len(found) > 1:
        raise ValueError(f"marts.fct_deal_margin mixes reporting currencies: {', '.join(found)}")
    return found[0] if found else None

"""Small helpers for Dagster materialisation metadata shared by the stages' assets."""

from __future__ import annotations


def markdown_table(rows: list[dict], empty: str = "_no rows_") -> str:
    """Rows (dicts with the same keys) as a markdown table for the Dagster UI."""
    if not rows:
        return empty
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    return "\n".join(lines)

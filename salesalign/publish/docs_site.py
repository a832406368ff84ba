"""The docs site under `$SALESALIGN_HOME/docs/`: dbt docs, the Great Expectations Data Docs, an index.

- `docs/dbt/index.html`: `dbt docs generate --static`, one file with the manifest and the catalog
  inlined, so it opens from disk (file://) without a web server.
- `docs/quality/`: the GX Data Docs site, written by the quality checks as they validate.
- `docs/index.html`: links to both, to the alignment brief and to the Parquet exports.
Every file is written aside and renamed into place, like the exports.

The dbt docs hold no data (DuckDB's catalog has no table statistics): only the project (manifest)
and the warehouse's tables, columns and types. They are regenerated when that fingerprint changes,
not on every run (`dbt docs generate` is a second dbt process: ~10 s per run).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from salesalign.transform.dbt import run_dbt

DOCS = "docs"
DBT_DOCS_FILES = {
    "static_index.html": "index.html",
    "manifest.json": "manifest.json",
    "catalog.json": "catalog.json",
}


FINGERPRINT = ".fingerprint"


def docs_fingerprint(manifest: Path, schema: list[tuple]) -> str:
    """What the dbt docs depend on: the project's manifest (its nodes, not when it was written) and the
    warehouse's (schema, table, column, type) rows."""
    h = hashlib.sha256()
    nodes = manifest.read_bytes() if manifest.exists() else b""
    h.update(nodes.split(b'"nodes"', 1)[-1])  # skip the metadata block (generated_at, invocation_id)
    for row in schema:
        h.update(repr(row).encode())
    return h.hexdigest()


def publish_dbt_docs(
    home: Path, run_id: str, fingerprint: str | None = None, reporting_currency: str = "USD"
) -> Path:
    """Generate the dbt docs against the warehouse (it reads the catalog: hold the warehouse pool),
    unless the published ones were generated from the same `fingerprint`."""
    target = home / DOCS / "dbt"
    stamp = target / FINGERPRINT
    current = stamp.read_text() if stamp.exists() and (target / "index.html").exists() else None
    if fingerprint and current == fingerprint:
        return target / "index.html"
    work = home / DOCS / f".dbt-docs.{run_id}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    run_dbt(
        ["docs", "generate", "--static"], warehouse_path=home / "warehouse.duckdb",
        reporting_currency=reporting_currency, target=work,
    )
    target.mkdir(parents=True, exist_ok=True)
    for source, name in DBT_DOCS_FILES.items():
        os.replace(work / source, target / name)
    shutil.rmtree(work, ignore_errors=True)
    if fingerprint:
        tmp = work.parent / f"{FINGERPRINT}.{run_id}.tmp"
        tmp.write_text(fingerprint)
        os.replace(tmp, stamp)
    return target / "index.html"


def write_index(home: Path, run_id: str) -> Path:
    """`docs/index.html`: what was published where, with relative links (the folder can be moved)."""
    links = [
        ("Alignment brief (for sales and strategy leaders)", "../reports/alignment-brief.html"),
        ("dbt docs: every model and column of the marts", "dbt/index.html"),
        ("Great Expectations Data Docs: validation results of each landed batch", "quality/index.html"),
        ("Parquet exports manifest (tables, row counts, schemas)", "../exports/manifest.json"),
    ]
    items = "".join(
        f'<li><a href="{href}">{escape(label)}</a>'
        f"{'' if (home / DOCS / href).resolve().exists() else ' (not built yet)'}</li>"
        for label, href in links
    )
    html = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>salesalign docs</title>"
        "<style>body{font-family:Helvetica,Arial,sans-serif;max-width:800px;margin:40px auto}</style>"
        "</head><body>"
        f"<h1>salesalign: published outputs</h1><ul>{items}</ul>"
        f"<p>Run {escape(run_id)}, {datetime.now(UTC):%d %b %Y %H:%M UTC}. BI tools: read the Parquet "
        "exports or "
        "open <code>serving.duckdb</code> read-only (docs/bi.md in the repository).</p></body></html>"
    )
    target = home / DOCS / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".index.html.{run_id}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    return target

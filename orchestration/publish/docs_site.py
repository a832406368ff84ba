"""The docs site under `$SALESALIGN_HOME/docs/`: dbt docs, the Great Expectations Data Docs, an index.

- `docs/dbt/index.html`: `dbt docs generate --static`, one file with the manifest and the catalog
  inlined, so it opens from disk (file://) without a web server.
- `docs/quality/`: the GX Data Docs site, written by the quality checks as they validate.
- `docs/index.html`: links to both, to the alignment brief and to the Parquet exports.
Every file is written aside and renamed into place, like the exports.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from dagster_dbt import DbtCliResource

DOCS = "docs"
DBT_DOCS_FILES = {
    "static_index.html": "index.html",
    "manifest.json": "manifest.json",
    "catalog.json": "catalog.json",
}


def publish_dbt_docs(dbt: DbtCliResource, home: Path, run_id: str) -> Path:
    """Generate the dbt docs against the warehouse (it reads the catalog: hold the warehouse pool)."""
    target = home / DOCS / "dbt"
    work = home / DOCS / f".dbt-docs.{run_id}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    dbt.cli(["docs", "generate", "--static"], target_path=work).wait()
    target.mkdir(parents=True, exist_ok=True)
    for source, name in DBT_DOCS_FILES.items():
        os.replace(work / source, target / name)
    shutil.rmtree(work, ignore_errors=True)
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

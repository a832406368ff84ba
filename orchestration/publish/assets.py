"""The publish assets: run after every mart and analytics table; write what BI tools, analysts and
leaders read (Parquet exports and the serving snapshot, the alignment brief, the docs site).

What readers see is always one complete run's output. The BI outputs of a run are written into a
staging folder of their own (`$SALESALIGN_HOME/.publish/<run id>/`: `exports/` with its manifest,
and `serving.duckdb`); only when all of them are complete do they go live, `exports/` by an atomic
exchange of the two folders and `serving.duckdb` by an atomic rename. A run that dies before that
(killed, disk full) leaves the previous exports and snapshot exactly as they were; what it staged is
removed by the next publish (`remove_leftovers`). The two go live one after the other: a reader
comparing them in the instant between may see the new exports beside the old snapshot, each whole.
"""

import ctypes
import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.automation import WAREHOUSE_POOL
from orchestration.publish.brief import section_markdown, write_brief
from orchestration.publish.docs_site import docs_fingerprint, publish_dbt_docs, write_index
from orchestration.publish.exports import export_parquet, write_serving_snapshot
from orchestration.resources import WarehouseResource
from orchestration.transform.project import dbt_project

BRIEF = dg.AssetKey(["publish", "alignment_brief"])
STAGING = ".publish"  # under SALESALIGN_HOME: one folder per publishing run, until it goes live


def remove_leftovers(home: Path) -> list[Path]:
    """Remove what publishing runs that died (SIGKILL, disk full) left: staged outputs and the
    temporary files written beside their targets. Publish steps run one at a time (the warehouse
    pool), so nothing else is writing these while a publish step calls this."""
    found = [*(home / STAGING).glob("*"), *home.glob(".serving.duckdb.*.tmp*")]
    for folder, pattern in (("exports", "**/.*.tmp"), ("reports", ".*.tmp"), ("docs", ".*.tmp")):
        found += (home / folder).glob(pattern)
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux `renameat2(RENAME_EXCHANGE)`); False if unsupported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # a kernel or file system without the exchange: fall back to two renames
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def go_live(staged: Path, target: Path) -> None:
    """Put the folder `staged` in place of `target`; the previous `target` ends up at `staged`."""
    if not target.exists():
        staged.rename(target)
    elif not _exchange(staged, target):
        previous = staged.with_name(f"{staged.name}.previous")
        target.rename(previous)  # readers briefly see no folder (never a mixed one)
        staged.rename(target)
        previous.rename(staged)


def publish_bi_outputs(con, home: Path, run_id: str) -> list:
    """Write the exports and the serving snapshot aside, then put both in place (see the module doc)."""
    stage = home / STAGING / run_id
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        published = export_parquet(con, stage, run_id)  # files named relative to `stage`, as to home
        snapshot = write_serving_snapshot(con, stage, run_id)
        go_live(stage / "exports", home / "exports")
        os.replace(snapshot, home / "serving.duckdb")
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # staged leftovers, or the previous exports
        if not any((home / STAGING).iterdir()):
            (home / STAGING).rmdir()
    return published


def build_publish_assets(upstream: Sequence[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    """The publish stage, depending on every table it publishes (so it runs last)."""

    @dg.asset(
        key=["publish", "bi_outputs"],
        group_name="publish",
        deps=list(upstream),
        description="Parquet exports of every marts.* and analytics.* table (with a manifest) and the "
        "read-only serving snapshot serving.duckdb, each replaced atomically.",
        kinds={"parquet", "duckdb"},
        pool=WAREHOUSE_POOL,
    )
    def bi_outputs(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        home = warehouse.path.parent
        for leftover in remove_leftovers(home):
            context.log.info(f"removed {leftover}, left by a publishing run that did not finish")
        with warehouse.connect() as con:
            published = publish_bi_outputs(con, home, context.run.run_id)
        snapshot = home / "serving.duckdb"
        context.log.info(f"published {len(published)} tables to {home / 'exports'} and {snapshot}")
        return dg.MaterializeResult(
            metadata={
                "exports": dg.MetadataValue.path(str(home / "exports")),
                "manifest": dg.MetadataValue.path(str(home / "exports" / "manifest.json")),
                "serving_snapshot": dg.MetadataValue.path(str(snapshot)),
                "tables": dg.MetadataValue.md(
                    "| table | rows |\n|---|---|\n"
                    + "\n".join(f"| {p.schema}.{p.table} | {p.rows:,} |" for p in published)
                ),
            }
        )

    @dg.asset(
        key=BRIEF,
        group_name="publish",
        deps=[k for k in upstream if k.path[0] == "analytics"],
        description="The alignment brief for sales and strategy leaders: one self-contained HTML page "
        "(reports/alignment-brief.html) with charts, intervals and verdicts.",
        kinds={"html"},
        pool=WAREHOUSE_POOL,
    )
    def alignment_brief(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        remove_leftovers(warehouse.path.parent)
        with warehouse.connect(read_only=True) as con:
            brief = write_brief(con, warehouse.path.parent, context.run.run_id)
        missing = [s for s in brief.sections if not s.ok]
        for s in missing:
            context.log.warning(f"brief section '{s.title}' not available: {s.status}")
        context.log.info(f"alignment brief: {brief.path}")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(brief.path)),
                "sections": dg.MetadataValue.md(
                    "| section | status |\n|---|---|\n"
                    + "\n".join(f"| {s.title} | {s.status} |" for s in brief.sections)
                ),
                "sections_missing": dg.MetadataValue.int(len(missing)),
                # the brief's charts, viewable in the UI without opening the file
                **{f"chart_{s.anchor}": dg.MetadataValue.md(section_markdown(s)) for s in brief.sections},
                "bytes": dg.MetadataValue.int(brief.path.stat().st_size),
            }
        )

    @dg.asset(
        key=["publish", "docs_site"],
        group_name="publish",
        deps=[*upstream, BRIEF],
        description="dbt docs (static, opens from disk) and the Great Expectations Data Docs under docs/, "
        "with an index linking them, the brief and the exports.",
        kinds={"dbt", "html"},
        pool=WAREHOUSE_POOL,
    )
    def docs_site(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, dbt: DbtCliResource
    ) -> dg.MaterializeResult:
        home = warehouse.path.parent
        with warehouse.connect() as con:
            schema = con.execute(
                "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
                "ORDER BY ALL"
            ).fetchall()
        fingerprint = docs_fingerprint(Path(dbt_project.manifest_path), schema)
        dbt_docs = publish_dbt_docs(dbt, home, context.run.run_id, fingerprint)
        index = write_index(home, context.run.run_id)
        context.log.info(f"docs site: {index}")
        return dg.MaterializeResult(
            metadata={
                "index": dg.MetadataValue.path(str(index)),
                "dbt_docs": dg.MetadataValue.path(str(dbt_docs)),
                "data_docs": dg.MetadataValue.path(str(home / "docs" / "quality" / "index.html")),
            }
        )

    return [bi_outputs, alignment_brief, docs_site]

"""Sources: where raw batches come from. Every source yields `Batch`es in the raw contract.

A source only says *which* files (or objects) hold each contract table; the landing reads them
into DuckDB. Later sources (foreign CRM exports with mapping profiles, REST APIs, a finance
database) implement the same `Source` protocol.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from salesalign import contract

FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Batch:
    """One file holding rows of one contract table."""

    table: str
    path: Path
    format: str  # parquet | csv | jsonl


class Source(Protocol):
    name: str

    def prepare(self) -> dict:
        """Make the source ready (generate, download, check) and return metadata describing it."""
        ...

    def batches(self, table: str) -> list[Batch]:
        """The batches holding rows of `table`, oldest first; empty if the source has none."""
        ...


class SourceError(Exception):
    """A source is missing or malformed; the message names the file or folder."""


_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def batch_day(path: Path) -> date | None:
    """The business day a dated batch holds (`activities/2025-06-01.parquet`, `2025-06-01-part2.csv`),
    or None for an undated file (a whole-table snapshot such as `accounts.parquet`)."""
    match = _DAY.match(path.stem)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise SourceError(f"{path}: the name starts like a date but {match.group(1)} is not one") from None


def is_data_file(path: Path) -> bool:
    """A file a drop delivers, not one still being written: hidden (`.accounts.csv.swp`, rsync's
    `.accounts.parquet.Xy12`), Office lock (`~$accounts.csv`) and partial-download names
    (`accounts.csv.part`, `.tmp`, `.crdownload`: their suffix is not a data format) never are."""
    return (
        path.is_file()
        and not path.name.startswith((".", "~"))
        and path.suffix.lower() in FORMATS
    )


@dataclass
class FileDropSource:
    """A folder with one file per contract table (`accounts.parquet`, `invoices.csv`, ...).

    A table may also be a sub-folder of files (`activities/2025-01-01.parquet`, ...), landed in
    name order: that is how incremental drops arrive. Only `<table>.<format>` names count: a
    temporary or partial file (`accounts.csv.part`, `.accounts.csv.swp`, `accounts.tmp.csv`) is
    never landed as the table.

    `through` bounds a partitioned extraction: a batch whose name starts with a day after it waits
    for the run of its own day (or a later one); undated files belong to every day.
    """

    path: Path
    name: str = "files"
    through: date | None = None

    def prepare(self) -> dict:
        if not self.path.is_dir():
            raise SourceError(f"file drop {self.path} does not exist or is not a folder")
        found = {t: [str(b.path.name) for b in self.batches(t)] for t in contract.TABLE_NAMES}
        unknown = sorted(
            p.name for p in self.path.iterdir() if is_data_file(p) and p.stem not in contract.TABLES_BY_NAME
        )
        return {
            "path": str(self.path),
            "tables_found": sum(1 for files in found.values() if files),
            "tables_missing": [t for t, files in found.items() if not files],
            "unknown_files": unknown,
        }

    def batches(self, table: str) -> list[Batch]:
        contract.table(table)  # fail early on a name that is not in the contract
        files = sorted(p for p in self.path.glob(f"{table}.*") if p.stem == table and is_data_file(p))
        folder = self.path / table
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if is_data_file(p))
        if self.through is not None:
            files = [p for p in files if (day := batch_day(p)) is None or day <= self.through]
        return [Batch(table, p, FORMATS[p.suffix.lower()]) for p in files]


@dataclass
class DemoSource:
    """The embedded demo company: generated once per (scale, seed) into `directory`, then a file drop.

    Generation writes to a temporary sibling folder and renames it into place, so an interrupted
    generation never leaves a half-written drop behind.
    """

    directory: Path
    scale: str = "default"
    seed: int = 42
    name: str = "demo"
    through: date | None = None  # as `FileDropSource.through`

    def prepare(self) -> dict:
        from salesalign import demo  # the generator is only needed for this source

        if not (self.directory / "truth.json").exists():
            self.directory.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".generating-", dir=self.directory.parent))
            try:
                demo.generate(self.scale, self.seed, staging)
                if self.directory.exists():
                    shutil.rmtree(self.directory)
                staging.rename(self.directory)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return {"path": str(self.directory), "scale": self.scale, "seed": self.seed}

    def batches(self, table: str) -> list[Batch]:
        return FileDropSource(self.directory, self.name, self.through).batches(table)


@dataclass
class CombinedSource:
    """A CRM source plus a finance source (e.g. a finance database): each table from whichever has it."""

    sources: list[Source]
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or " + ".join(s.name for s in self.sources)

    def prepare(self) -> dict:
        described = {s.name: s.prepare() for s in self.sources}
        missing = [t for t in contract.TABLE_NAMES if not self.batches(t)]
        return {"sources": described, "tables_missing": missing}

    def batches(self, table: str) -> list[Batch]:
        return [b for s in self.sources for b in s.batches(table)]

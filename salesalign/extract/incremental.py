"""Incremental sources (CRM APIs, a finance database): extract pages since a watermark, stage, map.

An extractor (`api.SalesforceApi`, `api.HubSpotApi`, `finance_db.FinanceDbExtractor`) yields pages
of flat records of one source object changed since a watermark. For every object the profile reads
(`file: Opportunity` names the API object or database table), each page is written as a JSON Lines
file under `$SALESALIGN_HOME/staging_drops/<source>/pages/<object>/<n>.jsonl`, and only then does
the watermark (`raw._watermarks`) advance. Each page is mapped through the profile into one
contract-shaped Parquet file per table (`staged/<table>/<key>-<n>.parquet`) that is never rewritten,
so landing (idempotent by SHA-256) lands every page exactly once; an interrupted extraction resumes
from its watermark and maps any page left unmapped.

An object without a change timestamp (`extractor.incremental(obj)` is False) is read whole each
time into a page named by its content hash: an unchanged table lands nothing new.

`until` bounds a partitioned extraction (a backfill of past days): records changed at or after it are
left for the run of their own day, and the watermark stops before them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from salesalign import contract
from salesalign.extract import profiles
from salesalign.extract.sources import Batch, SourceError
from salesalign.extract.watermarks import Watermark, WatermarkStore, parse_ts

CLOCK_SKEW = timedelta(minutes=5)  # records changed this close to the extraction start do not move watermarks


class Extractor(Protocol):
    def pages(self, obj: str, fields: list[str], mark: Watermark) -> Iterator[list[dict]]:
        """Pages of records of `obj` changed at or after the watermark, in change order."""
        ...

    def record_version(self, record: dict) -> tuple[str, str]:
        """(id, changed_at ISO-8601) of a record."""
        ...


def object_fields(profile: profiles.Profile) -> dict[str, list[str]]:
    """Source object -> the fields the profile reads from it (columns, lookup keys and values)."""
    objects: dict[str, list[str]] = {spec.file: [] for spec in profile.inputs.values()}
    for spec in profile.tables.values():
        if spec.input.file:
            objects.setdefault(spec.input.file, []).extend(c for f in spec.fields for c in f.source_columns)
        for f in spec.fields:
            if f.kind == "lookup":
                objects.setdefault(profile.inputs[f.arg["input"]].file, []).extend(
                    [f.arg["key"], f.arg["value"]]
                )
    return {o: list(dict.fromkeys(fs)) for o, fs in objects.items()}


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records)


@dataclass
class IncrementalSource:
    """Any extractor + a profile -> contract-shaped batches, one per page, resumable by watermark."""

    extractor: Extractor
    profile: profiles.Profile
    staging_root: Path
    watermarks: WatermarkStore
    name: str
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    until: datetime | None = None  # exclusive upper bound on change time; None: up to now
    _prepared: dict | None = field(default=None, init=False, repr=False)

    @property
    def home(self) -> Path:
        return self.staging_root / profiles.slug(self.name)

    def extract(self) -> dict[str, int]:
        """Fetch every object's new pages; returns the records written per object."""
        written: dict[str, int] = {}
        cutoff = self.now() - CLOCK_SKEW
        if self.until is not None:
            cutoff = min(cutoff, self.until)
        lookup_objects = {spec.file for spec in self.profile.inputs.values()}
        # lookup inputs first, so the tables that look them up see their latest pages
        ordered = sorted(object_fields(self.profile).items(), key=lambda kv: kv[0] not in lookup_objects)
        for obj, fields in ordered:
            folder = self.home / "pages" / obj
            folder.mkdir(parents=True, exist_ok=True)
            self._map_pending(obj)  # pages written before an interruption but not mapped yet
            incremental = getattr(self.extractor, "incremental", lambda _: True)(obj)
            mark = self.watermarks.get(self.name, obj) if incremental else Watermark()
            written[obj] = 0
            snapshot: list[dict] = []
            for records in self.extractor.pages(obj, fields, mark):
                if not incremental:
                    snapshot += records
                    continue
                new, in_page, beyond = [], set(), False
                for r in records:  # a version already written, or repeated within this page, lands once
                    v = self.extractor.record_version(r)
                    if self.until is not None and parse_ts(v[1]) >= self.until:
                        beyond = True  # pages come in change order: the rest is for later days
                        break
                    if v not in in_page and not mark.already_seen(*v):
                        in_page.add(v)
                        new.append((r, v))
                if not new:
                    if beyond:
                        break
                    continue
                self._write(folder / f"{mark.pages + 1:06d}.jsonl", _jsonl([r for r, _ in new]))
                mark = mark.advance([v for _, v in new], cutoff)  # only once the page is on disk
                self.watermarks.set(self.name, obj, mark)
                written[obj] += len(new)
                self._map_pending(obj)
                if beyond:
                    break
            if snapshot:
                text = _jsonl(snapshot)
                page = folder / f"snapshot-{hashlib.sha256(text.encode()).hexdigest()[:16]}.jsonl"
                if not page.exists():
                    self._write(page, text)
                    written[obj] = len(snapshot)
                self._map_pending(obj)
        return written

    @staticmethod
    def _write(page: Path, text: str) -> None:
        tmp = page.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(page)

    def _map_pending(self, obj: str) -> None:
        for page in sorted((self.home / "pages" / obj).glob("*.jsonl")):
            done = page.with_suffix(".mapped")
            if not done.exists():
                self._map_page(obj, page)
                done.touch()

    def _map_page(self, obj: str, page: Path) -> None:
        """Map one page into each table that reads `obj`; lookups see every page fetched so far."""
        keys = [k for k, spec in self.profile.tables.items() if spec.input.file == obj]
        if not keys:
            return
        with tempfile.TemporaryDirectory(dir=self.home) as tmp:
            drop = Path(tmp)
            shutil.copy(page, drop / f"{obj}.jsonl")
            for spec in self.profile.inputs.values():
                if spec.file != obj and (self.home / "pages" / spec.file).is_dir():
                    (drop / spec.file).symlink_to(self.home / "pages" / spec.file, target_is_directory=True)
            sub = profiles.Profile(
                self.profile.name,
                self.profile.description,
                {k: self.profile.tables[k] for k in keys},
                self.profile.inputs,
                self.profile.as_of,
                self.profile.text,
                self.profile.incremental,
            )
            try:
                staged = profiles.materialise(drop, sub, drop / "out")
            except profiles.ProfileError as exc:
                raise SourceError(f"{page}: {exc}") from exc
            for key, mapped in staged.items():
                if mapped.path:
                    target = (
                        self.home
                        / "staged"
                        / mapped.table
                        / f"{profiles.slug(key.replace('/', '__'))}-{page.stem}.parquet"
                    )
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(mapped.path, target)

    def prepare(self) -> dict:
        if self._prepared is None:
            written = self.extract()
            self._prepared = {
                "source": self.name,
                "profile": self.profile.name,
                "records_extracted": written,
                "tables_missing": [t for t in contract.TABLE_NAMES if not self.batches(t)],
                "assumptions": self.profile.assumptions(),
            }
        return self._prepared

    def batches(self, table: str) -> list[Batch]:
        contract.table(table)
        folder = self.home / "staged" / table
        return (
            [Batch(table, p, "parquet") for p in sorted(folder.glob("*.parquet"))] if folder.is_dir() else []
        )

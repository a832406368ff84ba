"""A source in a foreign shape, mapped onto the raw contract by a profile (`profiles.py`).

The export folder is read as is; the mapped, contract-shaped tables are staged as Parquet under
`$SALESALIGN_HOME/staging_drops/<profile>-<hash of the folder path>/` and handed to the landing
like any file drop. Staging is redone only when the profile or an input file changed (size and
modification time), and its bytes are deterministic, so landing the same export twice adds nothing.
An export without the opportunities file its profile names fails at once (`ProfileError`). `prepare`
reports per table the rows read, filtered and mapped; custom attributes are staged beside their table
(`attribute_batches`, landed into raw.attributes by `attributes.py`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from salesalign import contract
from salesalign.extract import profiles
from salesalign.extract.sources import Batch, SourceError


def staging_dir_for(staging_root: Path, profile: profiles.Profile, drop: Path) -> Path:
    digest = hashlib.sha256(str(drop.resolve()).encode()).hexdigest()[:10]
    return staging_root / f"{profiles.slug(profile.name)}-{digest}"


@dataclass
class MappedFileSource:
    """A folder of foreign export files + a mapping profile -> contract-shaped batches."""

    path: Path
    profile: profiles.Profile
    staging_root: Path
    name: str = ""
    _staged: dict[str, profiles.MappedTable] | None = field(default=None, init=False, repr=False)
    _counts: dict[str, dict[str, int]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name = self.name or f"files+{self.profile.name}:{self.path}"

    @property
    def staging_dir(self) -> Path:
        return staging_dir_for(self.staging_root, self.profile, self.path)

    def _fingerprint(self) -> str:
        inputs = sorted(
            (str(p.relative_to(self.path)), p.stat().st_size, p.stat().st_mtime_ns)
            for p in self.path.rglob("*")
            if p.is_file() and p.suffix.lower() in profiles.INPUT_FORMATS
        )
        return hashlib.sha256(json.dumps([self.profile.fingerprint, inputs]).encode()).hexdigest()

    def _stage(self) -> dict[str, profiles.MappedTable]:
        if self._staged is not None:
            return self._staged
        if not self.path.is_dir():
            raise SourceError(f"file drop {self.path} does not exist or is not a folder")
        fingerprint = self._fingerprint()
        lineage = self.staging_dir / "lineage.json"
        if lineage.exists():
            known = json.loads(lineage.read_text())
            if known.get("fingerprint") == fingerprint:
                self._staged = {
                    k: profiles.MappedTable(
                        v["table"],
                        self.staging_dir / v["file"],
                        v["rows"],
                        tuple(v["inputs"]),
                        self.staging_dir / v["attributes"] if v.get("attributes") else None,
                    )
                    for k, v in known["tables"].items()
                }
                self._counts = {k: v["counts"] for k, v in known["tables"].items() if v.get("counts")}
                return self._staged
        staged = profiles.materialise(self.path, self.profile, self.staging_dir, require_core=True)
        self._counts = {k: profiles.counts(m.report) for k, m in staged.items() if m.report}
        path = profiles.write_manifest(self.staging_dir, self.profile, self.path, staged)
        manifest = json.loads(path.read_text())
        manifest["fingerprint"] = fingerprint
        path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        self._staged = {t: m for t, m in staged.items() if m.path}
        return self._staged

    def prepare(self) -> dict:
        staged = self._stage()
        return {
            "path": str(self.path),
            "profile": self.profile.name,
            "staged_in": str(self.staging_dir),
            "rows_mapped": {k: m.rows for k, m in staged.items()},
            # per table: rows read from the export, filtered out by the profile, mapped
            "rows": dict(self._counts),
            "attributes": {k: list(self._attribute_names(k)) for k, m in staged.items() if m.attributes},
            "tables_missing": [t for t in contract.TABLE_NAMES if not self.batches(t)],
            "assumptions": self.profile.assumptions(),
        }

    def _attribute_names(self, key: str) -> tuple[str, ...]:
        return tuple(f.name for f in self.profile.tables[key].attributes)

    def attribute_batches(self, table: str) -> list[Batch]:
        """The custom attributes staged for contract table `table` (`contract.tables.ATTRIBUTES` rows)."""
        return [
            Batch(table, m.attributes, "parquet")
            for k, m in sorted(self._stage().items())
            if m.table == table and m.attributes
        ]

    def batches(self, table: str) -> list[Batch]:
        contract.table(table)
        return [Batch(table, m.path, "parquet") for k, m in sorted(self._stage().items()) if m.table == table]

"""Files derived from one declaration each: written by `make generate` (`salesalign generate`), checked
for drift by the tests and CI (`salesalign generate --check`).

Each generator returns the files it owns (repository-relative path -> text) and the folders it owns
entirely: a file in an owned folder that no generator produces is stale and is removed. Generated
text files start with a line that says so where their format allows a comment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from salesalign.settings import REPO


@dataclass(frozen=True)
class Generated:
    files: dict[str, str]
    owns: tuple[str, ...] = field(default_factory=tuple)  # folders holding only generated files


def _raw_contract_page() -> Generated:
    from salesalign import contract

    return Generated({"docs/raw-contract.md": contract.to_markdown() + "\n"})


def _raw_suites() -> Generated:
    from salesalign.contract import gx

    return Generated(gx.files(), owns=gx.FOLDERS)


def _raw_contract_dbt() -> Generated:
    from salesalign.contract import dbt

    return Generated(dbt.files())


def _quarantine_ledger_dbt() -> Generated:
    from salesalign.quality import quarantine

    return Generated(quarantine.generated_files())


def _analytics_tables() -> Generated:
    from salesalign.analytics import catalog

    return Generated(catalog.files(), owns=(catalog.SOURCES_DIR,))


# One entry per declaration; each is imported lazily so that `--check` names what failed to build.
GENERATORS: tuple[Callable[[], Generated], ...] = (
    _raw_contract_page,
    _raw_suites,
    _raw_contract_dbt,
    _quarantine_ledger_dbt,
    _analytics_tables,
)


def expected() -> tuple[dict[Path, str], tuple[Path, ...]]:
    """Every generated file with its text, and every folder the generators own."""
    files: dict[Path, str] = {}
    owned: list[Path] = []
    for generator in GENERATORS:
        out = generator()
        for rel, text in out.files.items():
            path = REPO / rel
            if path in files:
                raise ValueError(f"{rel} is produced by two generators")
            files[path] = text
        owned += [REPO / rel for rel in out.owns]
    return files, tuple(owned)


def stale() -> list[str]:
    """What differs between the repository and the generators: files missing, changed, or left over
    in an owned folder. Empty when everything is current."""
    files, owned = expected()
    found = [
        str(path.relative_to(REPO))
        for path, text in files.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    found += [f"{p.relative_to(REPO)} (no generator makes it)" for p in _leftovers(files, owned)]
    return sorted(found)


def _leftovers(files: dict[Path, str], owned: tuple[Path, ...]) -> list[Path]:
    return [
        p for folder in owned if folder.exists()
        for p in sorted(folder.rglob("*")) if p.is_file() and p not in files
    ]


def write() -> list[str]:
    """Bring every generated file up to date; returns what changed."""
    changed = stale()
    files, owned = expected()
    for path, text in files.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for leftover in _leftovers(files, owned):
        leftover.unlink()
    return changed

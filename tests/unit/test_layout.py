"""The layout's promises: the library imports no Dagster, and only its settings read the environment."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "salesalign"
RUNTIME = (LIBRARY, REPO / "orchestration")
# The one hand-over from the library to the code location: `salesalign run` executes the Dagster job.
CLI_HANDOVER = {("salesalign/cli.py", "orchestration.run")}


def _modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top))
    return found


def test_the_library_imports_no_dagster_nor_the_code_location():
    offenders = []
    for path in _modules(LIBRARY):
        rel = str(path.relative_to(REPO))
        for module, _ in _imports(path):
            dagster = module.split(".")[0] in ("dagster", "dagster_dbt", "dagster_webserver")
            wiring = module.split(".")[0] == "orchestration" and (rel, module) not in CLI_HANDOVER
            if dagster or wiring:
                offenders.append(f"{rel}: {module}")
    assert offenders == []


def test_importing_every_library_module_loads_no_dagster():
    code = (
        "import pkgutil, sys, importlib, salesalign\n"
        "for m in pkgutil.walk_packages(salesalign.__path__, 'salesalign.'):\n"
        "    importlib.import_module(m.name)\n"
        "roots = ('dagster', 'dagster_dbt', 'orchestration')\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in roots))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"

"""The Great Expectations file context in `expectations/`, and what lives in it.

The context holds, reviewed in git and generated from the raw contract (`make generate`,
salesalign/contract/gx.py): the expectation suites (`expectations/expectations/raw/<table>/<kind>.json`),
one pandas data asset per suite in `great_expectations.yml`, and one validation definition and one
checkpoint per suite. Validation results and the Data Docs site are written under `$SALESALIGN_HOME`
(`quality/validations/`, `docs/quality/`), never into git: the paths in `great_expectations.yml` are
substituted from the `SALESALIGN_HOME` we pass in.
"""

from __future__ import annotations

import logging
from pathlib import Path

from salesalign.settings import quiet_third_party

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
DATASOURCE = "salesalign"
BATCH_DEFINITION = "batch"
RAW_KINDS = ("schema", "rows", "batch", "reconciliation")

quiet_third_party()  # before GX is imported: it sends usage statistics and draws tqdm bars otherwise
logging.getLogger("great_expectations").setLevel(logging.WARNING)


def suite_name(layer: str, table: str, kind: str) -> str:
    """`raw.opportunities.rows`: also the name of its data asset, validation definition and checkpoint."""
    return f"{layer}.{table}.{kind}"


def quality_context(home: Path | str):
    """The file context rooted in `expectations/`, writing results and docs under `home`."""
    import great_expectations as gx

    return gx.get_context(
        mode="file",
        context_root_dir=str(EXPECTATIONS_DIR),
        runtime_environment={"SALESALIGN_HOME": str(Path(home).resolve())},
    )

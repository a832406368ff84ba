"""The raw contract: every table the pipeline ingests, whatever the source, and its landing checks.

The declaration is `salesalign/contract/tables.py` (read it there); the elements it is written with
are in `spec.py`. Beside them, the generators of what is derived from it (`make generate`): the
Great Expectations suites (`gx.py`), the dbt sources and macros (`dbt.py`) and
docs/raw-contract.md (`markdown.py`). `from salesalign import contract` gives the declaration.
"""

from salesalign.contract.spec import (
    BLOCKING,
    BLOCKS,
    FAIL_BATCH,
    QUARANTINE,
    QUARANTINES,
    WARNING,
    WARNS,
    Check,
    Column,
    Policy,
    Table,
)
from salesalign.contract.tables import (
    ACTIVITY_TYPES,
    CLOSED_STAGES,
    DOMAINS,
    LEAD_SOURCES,
    LOAD_METADATA,
    MONEY,
    OPEN_STAGES,
    PRACTICE_ACTIVITY_TYPES,
    PREVIOUS_ROLES,
    ROUTINE_ACTIVITY_TYPES,
    STAGES,
    TABLE_NAMES,
    TABLES,
    TABLES_BY_NAME,
    table,
)

__all__ = [
    "ACTIVITY_TYPES",
    "BLOCKING",
    "BLOCKS",
    "CLOSED_STAGES",
    "DOMAINS",
    "FAIL_BATCH",
    "LEAD_SOURCES",
    "LOAD_METADATA",
    "MONEY",
    "OPEN_STAGES",
    "PRACTICE_ACTIVITY_TYPES",
    "PREVIOUS_ROLES",
    "QUARANTINE",
    "QUARANTINES",
    "ROUTINE_ACTIVITY_TYPES",
    "STAGES",
    "TABLES",
    "TABLES_BY_NAME",
    "TABLE_NAMES",
    "WARNING",
    "WARNS",
    "Check",
    "Column",
    "Policy",
    "Table",
    "table",
    "to_markdown",
]


def to_markdown() -> str:
    """The contract as Markdown (docs/raw-contract.md, written by `make generate`)."""
    from salesalign.contract.markdown import contract_page

    return contract_page()

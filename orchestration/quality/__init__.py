"""Quality gates: Great Expectations suites (in `expectations/`) over every landed batch.

`validate_raw_batch` validates the rows of the newest loads of a raw table with the table's
suites and quarantines rows; `checks.py` wraps it as one blocking Dagster asset check per raw
table (and per mart); `assets.py` is the quarantine ledger in the asset graph, between raw and dbt.
"""

from orchestration.quality.validate import BatchReport, ExpectationOutcome, validate_raw_batch

__all__ = ["BatchReport", "ExpectationOutcome", "validate_raw_batch"]

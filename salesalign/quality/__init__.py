"""Quality gates: Great Expectations suites (in `expectations/`) over every landed batch.

`validate_raw_batch` validates the rows of the newest loads of a raw table with the table's
suites and quarantines rows. The Dagster wiring (`orchestration/quality.py`) runs it as one blocking
asset check per raw table and keeps the quarantine ledger in the asset graph, between raw and dbt.
"""

from salesalign.quality.validate import BatchReport, ExpectationOutcome, validate_raw_batch

__all__ = ["BatchReport", "ExpectationOutcome", "validate_raw_batch"]

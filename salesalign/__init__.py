"""salesalign, the library: everything the pipeline does, without Dagster.

Stages, in the order the data flows: `extract` (sources and landing into `raw.*`), `quality` (Great
Expectations on every landed batch, the quarantine ledger), `transform` (the dbt project), `analytics`
(cause-effect estimates and decision tables), `publish` (exports, serving snapshot, the brief, docs).
`contract` declares the raw tables; `demo` is the demo company; `settings` is the one reader of the
environment; `cli` is the `salesalign` command. The Dagster code location (`orchestration/`) only wires
these together. Public entry points: docs/python-api.md.
"""

"""The Dagster code location: thin wiring of the `salesalign` library, one module per stage."""

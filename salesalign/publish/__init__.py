"""Publish: what BI tools and people read — Parquet exports and a read-only serving snapshot."""

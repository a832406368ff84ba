"""Transform: the dbt project (dbt_project/) wired into Dagster with dagster-dbt."""

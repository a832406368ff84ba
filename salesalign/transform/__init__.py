"""Transform: the dbt project (`dbt_project/`), how to run dbt on it and where its artefacts go."""

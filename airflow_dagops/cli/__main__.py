"""`python -m airflow_dagops.cli`: the same as the `dagops` command."""

from airflow_dagops.cli.main import main

main()

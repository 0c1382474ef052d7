"""Git layer: a safe git runner, credentials from Airflow Connections, one classifier of git failures (errors.py),
`remote.run_remote` for every command that talks to a remote, and one bare mirror per repository."""

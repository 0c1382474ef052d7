"""Git layer: a safe git runner, credentials from Airflow Connections, one bare mirror per repository."""

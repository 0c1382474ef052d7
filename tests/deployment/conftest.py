"""The Celery deployments' PostgreSQL databases and Redis broker (tests/helpers/airflow_procs.py)."""

from tests.helpers.airflow_procs import postgres_databases, redis_broker  # noqa: F401 - fixtures for this folder

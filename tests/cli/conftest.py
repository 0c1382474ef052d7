"""Fixtures tests/cli shares with other folders: the real sshd, smart-HTTP git server and Airflow metadata DB
connections of tests/credentials, for `dagops credentials ... --json` (tests/cli/test_credentials_json.py)."""

from tests.credentials.conftest import airflow_db, http, http_server, served, ssh, ssh_server  # noqa: F401

"""Read an Airflow connection from any dagops process: the api-server (webhooks), the CLI, or a task.

`airflow.models.connection.Connection.get_connection_from_secrets` walks environment variables
(`AIRFLOW_CONN_*`), the configured secrets backend (Vault, ...) and the metadata DB, and inside a task it
goes through the Task SDK instead. The Task SDK's own lookup (`airflow.sdk.BaseHook.get_connection`)
would skip the metadata DB in the api-server and the CLI, where Airflow sets no process context.
"""

from __future__ import annotations

import warnings


def get_connection(conn_id: str):
    """The connection (with `.password` and `.extra_dejson`); raises when there is none."""
    from airflow.models.connection import Connection

    with warnings.catch_warnings():
        # Inside a task it warns that the Task SDK should be used, and then uses it: that is what we want.
        warnings.simplefilter("ignore", DeprecationWarning)
        return Connection.get_connection_from_secrets(conn_id)


def password_of(conn_id: str | None) -> str | None:
    """A connection's password, or None when the connection or its password is missing."""
    if not conn_id:
        return None
    try:
        return get_connection(conn_id).password or None
    except Exception:  # not found, or the backend is down: either way there is no secret to use
        return None

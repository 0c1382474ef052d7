"""Airflow connections, for every dagops process: the api-server (webhooks), the CLI, or a task.

The one place dagops reads or writes an Airflow Connection, so the rules below hold everywhere:

- Reading: `airflow.models.connection.Connection.get_connection_from_secrets` walks environment variables
  (`AIRFLOW_CONN_*`), the configured secrets backend (Vault, ...) and the metadata DB, and inside a task it
  goes through the Task SDK instead. The Task SDK's own lookup (`airflow.sdk.BaseHook.get_connection`)
  would skip the metadata DB in the api-server and the CLI, where Airflow sets no process context.
- Writing (credential rotation, `dagops credentials create`): only rows of the metadata DB, like
  `airflow connections add`; environment variables and secrets backends are read-only to dagops.

Airflow is imported inside the functions: the core stays importable (and testable) without it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from airflow_dagops import settings
from airflow_dagops.errors import DagOpsError
from airflow_dagops.store import reads

log = logging.getLogger(__name__)


# -- reading --------------------------------------------------------------------------------------------
def get_connection(conn_id: str):
    """The connection (with `.password` and `.extra_dejson`); raises when there is none."""
    from airflow.models.connection import Connection

    with warnings.catch_warnings():
        # Inside a task it warns that the Task SDK should be used, and then uses it: that is what we want.
        warnings.simplefilter("ignore", DeprecationWarning)
        return Connection.get_connection_from_secrets(conn_id)


def find_connection(conn_id: str):
    """The connection, or None when it is missing or its backend cannot be reached: for callers that say
    themselves what to do about a missing connection."""
    try:
        return get_connection(conn_id)
    except Exception as err:  # not found, or a backend that cannot be reached
        log.debug("connection %s cannot be read: %s", conn_id, type(err).__name__)
        return None


def password_of(conn_id: str | None) -> str | None:
    """A connection's password, or None when the connection or its password is missing."""
    if not conn_id:
        return None
    connection = find_connection(conn_id)
    return (connection.password or None) if connection is not None else None


def has_password(conn_id: str | None) -> bool:
    """Whether Airflow's lookup (`password_of`) finds the connection with a password; the password is never read
    out. Answered without loading Airflow (about two seconds of `dagops webhooks show`) where the answer is sure:
    no custom secrets backend and no multi-team mode, so Airflow would look in `AIRFLOW_CONN_<ID>` and then in
    the metadata DB's `connection` table, and both can be read directly. Anything else asks Airflow."""
    if not conn_id:
        return False
    certain = _password_set_without_airflow(conn_id)
    return certain if certain is not None else password_of(conn_id) is not None


def _password_set_without_airflow(conn_id: str) -> bool | None:
    """Airflow's search path read by hand (None where Airflow must answer): the environment variable first, as
    Airflow reads it (JSON, or a URI whose userinfo holds the password), then the metadata DB's row (its password
    column is encrypted, or NULL when the connection has none)."""
    if "airflow.configuration" in sys.modules:
        return None  # Airflow is loaded already: its own lookup costs nothing more
    try:
        multi_team = (settings.airflow_setting("core", "multi_team") or "").strip().lower()
        if settings.airflow_setting("secrets", "backend") or multi_team not in ("false", "f", "0"):
            return None
        url = settings.airflow_setting("database", "sql_alchemy_conn") or ""
    except Exception:  # an airflow.cfg the fast reader cannot read: Airflow says what is wrong with it
        return None
    value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if value is not None:
        return _env_connection_has_password(value)
    return _metadata_row_has_password(url, conn_id)


def _env_connection_has_password(value: str) -> bool | None:
    if value.strip().startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            return None  # Airflow reports the broken variable
        return bool(document.get("password")) if isinstance(document, dict) else None
    try:
        return bool(urlsplit(value).password)
    except ValueError:
        return None


def _metadata_row_has_password(url: str, conn_id: str) -> bool | None:
    """The `connection` row Airflow's MetastoreBackend reads (no team): whether its password is set."""
    path = reads.sqlite_path(url)
    if path is not None:  # Airflow's default metadata DB: read with Python's sqlite3, as dagops reads its own
        return _sqlite_row_has_password(path, conn_id)
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
            return False  # no DB, no row (Airflow's lookup fails there; connecting would create an empty file)
        engine = create_engine(parsed)
        try:
            with engine.connect() as connection:
                if not inspect(connection).has_table("connection"):
                    return False  # a DB Airflow never migrated holds no connection (its own lookup fails there)
                row = connection.execute(
                    text("SELECT password FROM connection WHERE conn_id = :conn_id AND team_name IS NULL"),
                    {"conn_id": conn_id},
                ).first()
        finally:
            engine.dispose()
    except Exception as err:  # unreachable, another schema, a driver missing: Airflow's own lookup answers
        log.debug("metadata DB not read directly for %s: %s", conn_id, type(err).__name__)
        return None
    return bool(row and row[0])


def _sqlite_row_has_password(path: Path, conn_id: str) -> bool | None:
    if not path.is_file():
        return False  # no DB, no row (Airflow's lookup fails there; connecting would create an empty file)
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)) as db:
            tables = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'connection'")
            if tables.fetchone() is None:
                return False  # a DB Airflow never migrated holds no connection (its own lookup fails there)
            query = "SELECT password FROM connection WHERE conn_id = ? AND team_name IS NULL"
            row = db.execute(query, (conn_id,)).fetchone()
    except sqlite3.Error as err:  # locked, another schema: Airflow's own lookup answers
        log.debug("metadata DB not read directly for %s: %s", conn_id, type(err).__name__)
        return None
    return bool(row and row[0])


def connection_origin(conn_id: str) -> str:
    """Where Airflow finds the connection first: 'metadata_db', 'environment', 'secrets backend <Class>' or
    'missing'. Only a connection found in the metadata DB can be written or deleted by dagops."""
    from airflow.configuration import ensure_secrets_loaded

    for backend in ensure_secrets_loaded():
        try:
            found = backend.get_connection(conn_id=conn_id)
        except Exception as err:  # an unreachable backend is skipped, as Airflow's own lookup does
            log.debug("backend %s did not answer for %s: %s", type(backend).__name__, conn_id, type(err).__name__)
            continue
        if found:
            kind = type(backend).__name__
            return {"MetastoreBackend": "metadata_db", "EnvironmentVariablesBackend": "environment"}.get(
                kind, f"secrets backend {kind}"
            )
    return "missing"


def use_server_secrets_chain() -> None:
    """Let GitHook see connections of the metadata DB, as `airflow connections ...` and the api-server do.

    Outside a task, Airflow's Task SDK looks connections up in env vars and custom secrets backends only,
    unless the process declares itself a server (`_AIRFLOW_PROCESS_CONTEXT=server`, set by the api-server
    and the scheduler). The dagops CLI and API have the metadata DB, so they may; inside a task (the
    supervisor's comms are set) nothing changes.
    """
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    if getattr(runner, "SUPERVISOR_COMMS", None) is None:
        os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")


# -- the metadata DB's rows -----------------------------------------------------------------------------
@contextlib.contextmanager
def metadata_session(doing: str) -> Iterator:
    """A session on Airflow's metadata DB whose failures say what could not be done, without DB URLs."""
    try:
        from airflow.utils.session import create_session

        with create_session() as session:
            yield session
    except DagOpsError:
        raise
    except Exception as err:
        raise DagOpsError(
            f"cannot {doing} in Airflow's metadata DB ({type(err).__name__}): dagops writes connections "
            "there, like `airflow connections add`; run it where that DB is reachable "
            "(the api-server, or a CLI with Airflow's configuration)"
        ) from err


def add_connection(*, doing: str, **fields) -> None:
    """Insert a Connection row (`conn_id`, `conn_type`, `host`, `password`, `extra`, ...)."""
    from airflow.models.connection import Connection

    with metadata_session(doing) as session:
        session.add(Connection(**fields))


def stored_conn_ids(conn_ids: list[str]) -> set[str]:
    """Those of `conn_ids` that are rows of the metadata DB: to pick a new id that is free."""
    from airflow.models.connection import Connection
    from sqlalchemy import select

    with metadata_session("look up connection ids") as session:
        return set(session.scalars(select(Connection.conn_id).where(Connection.conn_id.in_(conn_ids))))


def delete_connection(conn_id: str) -> None:
    """Delete the row of `conn_id` from the metadata DB (nothing when there is none)."""
    from airflow.models.connection import Connection
    from sqlalchemy import select

    with metadata_session(f"delete connection {conn_id!r}") as session:
        connection = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        if connection is not None:
            session.delete(connection)


def description_of(conn_id: str) -> str | None:
    """The description of `conn_id`'s row in the metadata DB (None without a row or a description)."""
    from airflow.models.connection import Connection
    from sqlalchemy import select

    with metadata_session("read a connection's description") as session:
        return session.scalar(select(Connection.description).where(Connection.conn_id == conn_id))


def describe_connection(conn_id: str, description: str) -> None:
    """Set the description of `conn_id`'s row in the metadata DB."""
    from airflow.models.connection import Connection
    from sqlalchemy import select

    with metadata_session("describe the connection") as session:
        connection = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        if connection is not None:
            connection.description = description


def conn_ids_described(prefix: str) -> list[str]:
    """The rows of the metadata DB whose description starts with `prefix` (dagops' own markers)."""
    from airflow.models.connection import Connection
    from sqlalchemy import select

    with metadata_session("look for connections") as session:
        return list(session.scalars(select(Connection.conn_id).where(Connection.description.like(prefix + "%"))))

"""Engine, sessions and schema migration of the dagops state DB."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from airflow_dagops import settings
from airflow_dagops.errors import DagOpsError
from airflow_dagops.safety import redact
from airflow_dagops.store.schema import MIGRATIONS_DIR, VERSION_TABLE, unavailable
from airflow_dagops.store.schema import checked_urls as _schema_checked
from airflow_dagops.store.schema import head_from_files as _head_from_files

log = logging.getLogger(__name__)

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the api-server read while a sync writes; NORMAL skips an fsync per commit, which WAL
    # makes safe against corruption (a crash can only lose the last commit, never break the file).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def get_engine(url: str | None = None) -> Engine:
    url = url or settings.sql_alchemy_conn()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            _engines[url] = engine
    return engine


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def dispose_engines() -> None:
    """Forget cached engines (tests switch DBs; forked processes must not share connections)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _schema_checked.clear()


def _alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["dagops_url"] = url
    return config


def migrate(url: str | None = None) -> str:
    """Create or upgrade the schema to the newest revision; returns that revision."""
    from alembic import command

    url = url or settings.sql_alchemy_conn()
    _quiet_alembic()
    try:
        command.upgrade(_alembic_config(url), "head")
    except Exception as err:  # alembic/driver errors: give the user the URL (redacted) and the cause
        raise DagOpsError(f"could not migrate the dagops state DB at {redact(url)}: {err}") from err
    _schema_checked.add(url)
    return head_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(""))
    head = script.get_current_head()
    if head is None:  # the package ships its migrations: none found is a broken installation
        raise DagOpsError("the dagops state DB migrations are missing from this installation")
    return head


def _quiet_alembic() -> None:
    # Alembic logs "Context impl ..." at INFO on every check: noise in CLI output and task logs.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def current_revision(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    _quiet_alembic()
    with get_engine(url).connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def ensure_schema(url: str | None = None) -> None:
    """Every face calls this: migrate when the schema is behind, at most one check per process."""
    url = url or settings.sql_alchemy_conn()
    if url in _schema_checked:
        return
    # At head, one SELECT and the revision files answer: loading alembic costs a CLI command about 0.4 s.
    at_head = (head := _head_from_files()) is not None and _stored_revision(url) == head
    if not at_head and current_revision(url) != head_revision():
        log.info("dagops state DB schema is behind; migrating %s", redact(url))
        migrate(url)
    _schema_checked.add(url)


def _stored_revision(url: str) -> str | None:
    """The one revision in the version table, by a plain query; None without the table or with several rows."""
    with get_engine(url).connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        rows: list[str] = list(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())  # noqa: S608
    return rows[0] if len(rows) == 1 else None


@contextmanager
def read_connection(url: str | None = None) -> Iterator[Connection]:
    """A plain connection for hot read-only paths (a poll), without the ORM session's bookkeeping."""
    url = url or settings.sql_alchemy_conn()
    with _state_db_errors(url):
        ensure_schema(url)
        with get_engine(url).connect() as connection:
            yield connection


_session_factories: dict[str, sessionmaker] = {}


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: committed when the block ends, rolled back on error."""
    url = url or settings.sql_alchemy_conn()
    with _state_db_errors(url):
        ensure_schema(url)
        factory = _session_factories.get(url)
        if factory is None or factory.kw.get("bind") is not get_engine(url):
            factory = sessionmaker(bind=get_engine(url), expire_on_commit=False)
            _session_factories[url] = factory
        session = factory()
        try:
            yield session
            session.commit()
        except BaseException:
            _rollback_quietly(session)
            raise
        finally:
            session.close()


def _rollback_quietly(session: Session) -> None:
    try:
        session.rollback()
    except OperationalError as err:  # the connection is gone; the server rolled the transaction back already
        log.debug("rollback on a lost connection: %s", err)


@contextmanager
def _state_db_errors(url: str) -> Iterator[None]:
    """A lost or refused connection (a restarting server, a network cut) becomes an error a user can act on
    (schema.unavailable)."""
    try:
        yield
    except OperationalError as err:
        raise unavailable(url, str(err.orig).strip().splitlines()[0] if err.orig else type(err).__name__) from err

"""The dagops state DB of a test: SQLite, and PostgreSQL when DAGOPS_TEST_POSTGRES_URL is set (a test of the
migrations gets a new PostgreSQL schema, dropped afterwards; a `dagops_env` test its process's migrated schema,
emptied first), and a throwaway dagops installation around it (`dagops_env`).

SQLite state DBs are copies of one DB migrated once per test session (per xdist worker): running the
migrations for each of the ~1,000 tests that use `dagops_env` cost about a minute of the suite. The
migrations themselves are tested on empty DBs (tests/store/test_db.py uses `state_db_url` alone).
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("DAGOPS_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


def postgres_schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def state_db_url(request, tmp_path):
    """An empty state DB (no tables yet) on each backend; for a `dagops_env` on PostgreSQL, the test process's
    shared schema, migrated and emptied (see `_shared_postgres_schema`)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    if "dagops_env" in request.fixturenames and request.node.get_closest_marker("fresh_state_db") is None:
        yield _shared_postgres_schema(request.session)
        return
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield postgres_schema_url(schema)
    finally:
        from airflow_dagops.store import db

        db.dispose_engines()
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# A new PostgreSQL schema migrated for each test cost ~0.65 s of CPU (0.5 s of it in the server) for each of ~950
# tests. A `dagops_env` test instead gets its process's one schema, migrated once and emptied before each test (a
# TRUNCATE of every table, identities restarted: as new). A test that changes the schema itself (a downgrade) or
# must start from no tables asks for `state_db_url` alone, or is marked `fresh_state_db`; a schema found changed
# anyway (not at the head revision, tables missing) is dropped and made again.
_SHARED_SCHEMA: dict[str, str] = {}


def _shared_postgres_schema(session) -> str:
    from sqlalchemy import create_engine

    from airflow_dagops.store import db

    db.dispose_engines()  # no connection of an earlier test may hold a lock the TRUNCATE waits for
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            url = _SHARED_SCHEMA.get("url")
            if url is None or not _empty_shared_schema(connection, _SHARED_SCHEMA["schema"]):
                url = _new_shared_schema(connection, session)
    finally:
        admin.dispose()
    db._schema_checked.add(url)  # what db.migrate records: this process has seen the schema at head
    return url


def _empty_shared_schema(connection, schema: str) -> bool:
    """TRUNCATE every table of the schema; False when the schema is not as the migrations left it."""
    from sqlalchemy import text

    from airflow_dagops.store import db
    from airflow_dagops.store.schema import VERSION_TABLE

    tables = set(connection.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}).all())
    if tables != _SHARED_SCHEMA.get("tables"):
        return False
    revision = connection.scalar(text(f"SELECT version_num FROM {schema}.{VERSION_TABLE}"))
    if revision != db.head_revision():
        return False
    names = ", ".join(f"{schema}.{table}" for table in sorted(tables - {VERSION_TABLE}))
    connection.execute(text("SET lock_timeout = '30s'"))  # a leaked connection of an earlier test: fail, not hang
    connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return True


def _new_shared_schema(connection, session) -> str:
    from sqlalchemy import text

    from airflow_dagops.store import db

    if "schema" in _SHARED_SCHEMA:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {_SHARED_SCHEMA['schema']} CASCADE"))
    else:
        session.config.add_cleanup(_drop_shared_schema)
    schema = f"w_{uuid.uuid4().hex[:12]}"
    connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = postgres_schema_url(schema)
    db.migrate(url)
    db.dispose_engines()
    tables = set(connection.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}).all())
    _SHARED_SCHEMA.update(schema=schema, url=url, tables=tables)
    return url


def _drop_shared_schema() -> None:
    from sqlalchemy import create_engine, text

    from airflow_dagops.store import db

    db.dispose_engines()
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {_SHARED_SCHEMA.pop('schema')} CASCADE"))
    admin.dispose()
    _SHARED_SCHEMA.clear()


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory) -> Path:
    """A SQLite state DB migrated to the newest revision, once per session: `dagops_env` copies it."""
    from airflow_dagops.store import db

    path = tmp_path_factory.mktemp("state-db-template") / "state.db"
    url = f"sqlite:///{path}"
    db.migrate(url)
    db.dispose_engines()  # closes the last connection: the WAL is checkpointed into the file
    return path


def migrate_state_db(url: str, request) -> None:
    """Bring the test's state DB to the newest revision: a copy of the session's template for a new SQLite
    file, the migrations otherwise."""
    from sqlalchemy.engine import make_url

    from airflow_dagops.store import db

    parsed = make_url(url)
    target = Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None
    if target is not None and not target.exists() and not parsed.query:
        template = request.getfixturevalue("migrated_sqlite_template")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, target)
        db._schema_checked.add(url)  # what db.migrate records: this process has seen the schema at head
        return
    if _SHARED_SCHEMA.get("url") and url.startswith(_SHARED_SCHEMA["url"]):  # migrated when it was made
        db._schema_checked.add(url)
        return
    db.migrate(url)


@dataclass
class DagOpsEnv:
    airflow_home: Path
    dags_folder: Path
    dagops_home: Path
    db_url: str

    def env(self) -> dict[str, str]:
        """Environment for a `dagops` subprocess pointing at this test's installation."""
        return {**os.environ, **env_vars(self)}


def env_vars(env: DagOpsEnv) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(env.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(env.dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DAGOPS__DAGOPS_HOME": str(env.dagops_home),
        "AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN": env.db_url,
        "AIRFLOW__DAGOPS__LOCK_TIMEOUT": "60",
        # The dagops-releases bundle's folders (publish_mode = bundle, the default) are the test's own, not /tmp's.
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(env.airflow_home / "bundles"),
        # The engine's tests need the gate, not every check: syntax and file checks run, the slower steps
        # (sandboxed imports, bandit, ruff) are covered by tests/validate and the tests that switch them on.
        "AIRFLOW__DAGOPS__VALIDATION_SKIP": "security,compat,imports,structure,policy",
        "AIRFLOW__DAGOPS__VALIDATION_CACHE": str(env.dagops_home / "cache" / "validation.db"),
    }


@pytest.fixture
def dagops_env(tmp_path, state_db_url, monkeypatch, request) -> DagOpsEnv:
    """A throwaway installation: AIRFLOW_HOME, dags folder, dagops home and a migrated state DB."""
    from airflow_dagops.store import db

    home = tmp_path / "airflow"
    env = DagOpsEnv(home, home / "dags", home / "dagops", state_db_url)
    env.dags_folder.mkdir(parents=True)
    for key, value in env_vars(env).items():
        monkeypatch.setenv(key, value)
    db.dispose_engines()
    migrate_state_db(state_db_url, request)
    yield env
    db.dispose_engines()

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, select

from airflow_dagops.store import db
from airflow_dagops.store.models import Repository

TABLES = {
    "dagops_repository",
    "dagops_sync_run",
    "dagops_release",
    "dagops_finding",
    "dagops_deploy_event",
    "dagops_webhook_delivery",
    "dagops_check_run",
    "dagops_alembic_version",
}


def test_migrate_creates_every_table_and_is_idempotent(state_db_url):
    db.dispose_engines()
    assert db.current_revision(state_db_url) is None
    assert db.migrate(state_db_url) == db.head_revision()
    assert db.migrate(state_db_url) == db.head_revision()
    assert TABLES <= set(inspect(db.get_engine(state_db_url)).get_table_names())


def test_migrations_match_the_models(state_db_url):
    """A model change without its Alembic revision (or the reverse) fails here, not in production."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from airflow_dagops.store.models import Base

    db.dispose_engines()
    db.migrate(state_db_url)
    with db.get_engine(state_db_url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "dagops_alembic_version" not in str(d)] == []


def test_faces_migrate_implicitly_when_the_schema_is_behind(state_db_url):
    db.dispose_engines()
    db.migrate(state_db_url)
    command.downgrade(db._alembic_config(state_db_url), "base")
    db.dispose_engines()  # a new process: nothing checked yet
    assert db.current_revision(state_db_url) is None
    with db.session_scope(state_db_url) as session:
        assert session.scalars(select(Repository)).all() == []
    assert db.current_revision(state_db_url) == db.head_revision()

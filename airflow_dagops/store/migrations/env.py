"""Alembic environment: the URL comes from dagops settings, never from an ini file."""

from __future__ import annotations

from alembic import context

from airflow_dagops.store.db import VERSION_TABLE, get_engine
from airflow_dagops.store.models import Base

config = context.config
url = config.attributes.get("dagops_url")

if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, version_table=VERSION_TABLE, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with get_engine(url).connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()

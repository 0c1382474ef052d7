"""conn_origin: the host a repository's (or catalog's) connection was attached for

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

A connection's credentials go only to `conn_origin` (`scheme://host:port`, git/credentials.py). Rows that already
have a connection are attached for the origin of their current URL: the upgrade trusts the URLs registered before
it (review them with `dagops repos list` if someone without connection rights could have changed one).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from airflow_dagops.git.credentials import url_origin

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("dagops_repository", "dagops_marketplace_catalog")


def upgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name) as batch:
            batch.add_column(sa.Column("conn_origin", sa.String(300), nullable=True))
    bind = op.get_bind()
    for name in TABLES:
        table = sa.table(name, sa.column("id", sa.Integer), sa.column("url", sa.String), sa.column("conn_id"))
        origin = sa.table(name, sa.column("id", sa.Integer), sa.column("conn_origin", sa.String))
        rows = bind.execute(sa.select(table.c.id, table.c.url).where(table.c.conn_id.is_not(None))).tuples().all()
        for row_id, url in rows:
            bind.execute(sa.update(origin).where(origin.c.id == row_id).values(conn_origin=url_origin(url)))


def downgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name) as batch:
            batch.drop_column("conn_origin")

"""sync run error code

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why a failed sync failed, as a code ("authentication_failed", "validation_failed", ...), so the
    # UI can say it in words without parsing messages.
    with op.batch_alter_table("dagops_sync_run") as batch:
        batch.add_column(sa.Column("error_code", sa.String(40), nullable=True))
    op.create_index("ix_dagops_sync_run_airflow_run_id", "dagops_sync_run", ["airflow_run_id"])


def downgrade() -> None:
    op.drop_index("ix_dagops_sync_run_airflow_run_id", table_name="dagops_sync_run")
    with op.batch_alter_table("dagops_sync_run") as batch:
        batch.drop_column("error_code")

"""deploy event diff

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # What a deploy changed (DAGs and tasks added/removed, schedule, owners, retries, tags): airflow_dagops/diff.py
    with op.batch_alter_table("dagops_deploy_event") as batch:
        batch.add_column(sa.Column("diff", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dagops_deploy_event") as batch:
        batch.drop_column("diff")

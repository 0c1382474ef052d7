"""isolated_env: per-namespace virtual environments

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dagops_repository") as batch:
        # Install the repository's declared requirements into its own venv (airflow_dagops/venvs.py).
        batch.add_column(sa.Column("isolated_env", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("dagops_repository") as batch:
        batch.drop_column("isolated_env")

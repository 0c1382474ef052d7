"""repository options: on_conflict, access_control, promotion; release hidden files

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dagops_repository") as batch:
        # What happens to this repository's files whose dag_ids a higher-priority repository owns.
        batch.add_column(sa.Column("on_conflict", sa.String(20), nullable=False, server_default="skip_files"))
        # {role: [can_read, can_edit, ...]} applied to its DAGs by the cluster policy (FAB auth manager).
        batch.add_column(sa.Column("access_control", sa.JSON(), nullable=True))
        # {stages: [...], soak_runs: N}: roll new releases out stage by stage.
        batch.add_column(sa.Column("promotion", sa.JSON(), nullable=True))
    with op.batch_alter_table("dagops_release") as batch:
        # {file: reason} for files left out of this release because another repository owns their dag_ids.
        batch.add_column(sa.Column("hidden_files", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dagops_release") as batch:
        batch.drop_column("hidden_files")
    with op.batch_alter_table("dagops_repository") as batch:
        batch.drop_column("promotion")
        batch.drop_column("access_control")
        batch.drop_column("on_conflict")

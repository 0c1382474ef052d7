"""dagops_live_namespace: the live set of the dagops-releases DAG bundle

Revision ID: 0016_live_set
Revises: 0015
Create Date: 2026-12-14

With `[dagops] publish_mode = bundle` (the default from this revision on), every way a release goes live writes
which release of which repository is live in each namespace into this table, in the same transaction; the
dagops-releases bundle's refresh reads it instead of links in a shared folder (airflow_dagops/deploy/live_set.py).
An installation that published before fills it with `dagops bundle migrate --to bundle`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_live_set"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dagops_live_namespace",
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column(
            "repository_id", sa.Integer(), sa.ForeignKey("dagops_repository.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("release_id", sa.Integer(), sa.ForeignKey("dagops_release.id", ondelete="SET NULL"), nullable=True),
        sa.Column("commit_sha", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("release_namespace", sa.String(63), nullable=True),
        sa.Column("subdir", sa.String(1024), nullable=True),
        sa.Column("ref", sa.String(255), nullable=True),
        sa.Column("airflowignore", sa.Text(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dagops_live_namespace_repository_id", "dagops_live_namespace", ["repository_id"])


def downgrade() -> None:
    op.drop_index("ix_dagops_live_namespace_repository_id", table_name="dagops_live_namespace")
    op.drop_table("dagops_live_namespace")

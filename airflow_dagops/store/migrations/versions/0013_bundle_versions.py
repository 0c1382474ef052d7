"""dagops_bundle_version: the versions of the dagops-releases DAG bundle

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10

With `[dagops] publish_mode = bundle`, Airflow records a bundle version on every DAG version and DAG run. The
version is a short id of the set of live releases; this table maps it back to that set, so a worker that has
never seen a version can rebuild it from git (airflow_dagops/bundle/).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dagops_bundle_version",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_since", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dagops_bundle_version_current_since", "dagops_bundle_version", ["current_since"])


def downgrade() -> None:
    op.drop_index("ix_dagops_bundle_version_current_since", table_name="dagops_bundle_version")
    op.drop_table("dagops_bundle_version")

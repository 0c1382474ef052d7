"""repository discovery and marketplace download statistics

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-13

`dagops_discovery_source` holds the organizations dagops scans (the `discovery:` block of dagops.yaml) and
`dagops_discovered_repository` what matched their rules: proposed, registered, removed (flagged, never deleted) or
ignored (airflow_dagops/discovery/). `dagops_marketplace_event` records every install, update and uninstall of a
package version: the marketplace's download statistics (airflow_dagops/marketplace/stats.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dagops_discovery_source",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("conn_id", sa.String(250), nullable=True),
        sa.Column("conn_origin", sa.String(300), nullable=True),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("register", sa.Boolean(), nullable=False),
        sa.Column("namespace_prefix", sa.String(30), nullable=True),
        sa.Column("last_scanned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dagops_discovered_repository",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(63), nullable=False),
        sa.Column("full_name", sa.String(512), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("repository", sa.String(63), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("source", "full_name", name="uq_discovered_repository"),
    )
    op.create_index("ix_dagops_discovered_repository_source", "dagops_discovered_repository", ["source"])
    op.create_table(
        "dagops_marketplace_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("package", sa.String(63), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("catalog", sa.String(63), nullable=True),
        sa.Column("repository", sa.String(63), nullable=True),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dagops_marketplace_event_package", "dagops_marketplace_event", ["package", "version"])


def downgrade() -> None:
    op.drop_index("ix_dagops_marketplace_event_package", table_name="dagops_marketplace_event")
    op.drop_table("dagops_marketplace_event")
    op.drop_index("ix_dagops_discovered_repository_source", table_name="dagops_discovered_repository")
    op.drop_table("dagops_discovered_repository")
    op.drop_table("dagops_discovery_source")

"""events and proposals: the event feed, proposals written back to Git, and small stored cursors

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "dagops_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        _when("created_at"),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("repository", sa.String(63), nullable=True),
        sa.Column("release_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("summary", sa.String(1000), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_dagops_event_repository_id", "dagops_event", ["repository", "id"])
    op.create_index("ix_dagops_event_kind_id", "dagops_event", ["kind", "id"])
    op.create_index("ix_dagops_event_created_at", "dagops_event", ["created_at"])
    op.create_table(
        "dagops_proposal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("repository", sa.String(63), nullable=False, index=True),
        sa.Column("title", sa.String(250), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("base_commit", sa.String(64), nullable=True),
        sa.Column("branch", sa.String(255), nullable=True),
        sa.Column("commit_sha", sa.String(64), nullable=True),
        sa.Column("pr_url", sa.String(2048), nullable=True),
        sa.Column("pr_error", sa.Text(), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(250), nullable=False),
        _when("created_at"),
        _when("updated_at"),
    )
    op.create_table(
        "dagops_state",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=True),
        _when("updated_at"),
    )


def downgrade() -> None:
    op.drop_table("dagops_state")
    op.drop_table("dagops_proposal")
    op.drop_index("ix_dagops_event_created_at", table_name="dagops_event")
    op.drop_index("ix_dagops_event_kind_id", table_name="dagops_event")
    op.drop_index("ix_dagops_event_repository_id", table_name="dagops_event")
    op.drop_table("dagops_event")

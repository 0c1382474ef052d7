"""promotion: a release's way through its repository's promotion stages

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dagops_promotion",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "repository_id",
            sa.Integer(),
            sa.ForeignKey("dagops_repository.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("release_id", sa.Integer(), sa.ForeignKey("dagops_release.id", ondelete="SET NULL"), nullable=True),
        # The stage the release is live in; soaking / promoted / blocked / superseded.
        sa.Column("stage", sa.String(63), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False, server_default="0"),
        # Who promoted, whether forced, the failed run that blocked it.
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_dagops_promotion_repository_id", "dagops_promotion", ["repository_id"])


def downgrade() -> None:
    op.drop_index("ix_dagops_promotion_repository_id", table_name="dagops_promotion")
    op.drop_table("dagops_promotion")

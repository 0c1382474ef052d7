"""marketplace: catalogs, their package index, ratings, reviews, installs and check badges

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "dagops_marketplace_catalog",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("conn_id", sa.String(250), nullable=True),
        sa.Column("last_commit", sa.String(64), nullable=True),
        _when("last_refreshed_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("problems", sa.JSON(), nullable=True),
        _when("created_at"),
    )
    op.create_table(
        "dagops_marketplace_package",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "catalog_id",
            sa.Integer(),
            sa.ForeignKey("dagops_marketplace_catalog.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(63), nullable=False, index=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("tag", sa.String(255), nullable=True),
        sa.Column("commit_sha", sa.String(64), nullable=False),
        sa.Column("folder", sa.String(1024), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        _when("created_at"),
        sa.UniqueConstraint("catalog_id", "name", "version", name="uq_marketplace_package_version"),
    )
    op.create_table(
        "dagops_marketplace_rating",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("package", sa.String(63), nullable=False, index=True),
        sa.Column("author", sa.String(250), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        sa.UniqueConstraint("package", "author", name="uq_marketplace_rating_author"),
    )
    op.create_table(
        "dagops_marketplace_review",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("package", sa.String(63), nullable=False, index=True),
        sa.Column("author", sa.String(250), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        _when("created_at"),
    )
    op.create_table(
        "dagops_marketplace_install",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("package", sa.String(63), nullable=False, index=True),
        sa.Column("catalog", sa.String(63), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("repository", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        _when("created_at"),
        _when("updated_at"),
        _when("removed_at", nullable=True),
    )
    op.create_table(
        "dagops_marketplace_badge",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("catalog", sa.String(63), nullable=False),
        sa.Column("package", sa.String(63), nullable=False, index=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("commit_sha", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        _when("checked_at"),
        sa.UniqueConstraint("catalog", "package", name="uq_marketplace_badge_package"),
    )


def downgrade() -> None:
    for table in (
        "dagops_marketplace_badge",
        "dagops_marketplace_install",
        "dagops_marketplace_review",
        "dagops_marketplace_rating",
        "dagops_marketplace_package",
        "dagops_marketplace_catalog",
    ):
        op.drop_table(table)

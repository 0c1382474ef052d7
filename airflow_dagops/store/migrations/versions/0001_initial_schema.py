"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


# Repository and release point at each other (live/pinned release). SQLite cannot add a constraint
# later, but accepts a forward reference; other databases get the constraints once both tables exist.
_RELEASE_FKS = [
    ("fk_repo_live_release", "live_release_id"),
    ("fk_repo_pinned_release", "pinned_release_id"),
]


def _release_foreign_keys_inline() -> list:
    if not _sqlite():
        return []
    return [
        sa.ForeignKeyConstraint([column], ["dagops_release.id"], name=name, ondelete="SET NULL")
        for name, column in _RELEASE_FKS
    ]


def upgrade() -> None:
    op.create_table(
        "dagops_repository",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("namespace", sa.String(length=63), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("conn_id", sa.String(length=250), nullable=True),
        sa.Column("subdir", sa.String(length=1024), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("poll_interval", sa.Integer(), nullable=True),
        sa.Column("live_release_id", sa.Integer(), nullable=True),
        sa.Column("pinned_release_id", sa.Integer(), nullable=True),
        sa.Column("last_seen_commit", sa.String(length=64), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        *_release_foreign_keys_inline(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("namespace"),
    )
    op.create_table(
        "dagops_release",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("namespace", sa.String(length=63), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("author", sa.String(length=512), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("path", sa.String(length=4096), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("validation_summary", sa.JSON(), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["repository_id"], ["dagops_repository.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "commit_sha", name="uq_release_repo_commit"),
    )
    with op.batch_alter_table("dagops_release", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dagops_release_repository_id"), ["repository_id"], unique=False)

    if not _sqlite():
        for name, column in _RELEASE_FKS:
            op.create_foreign_key(name, "dagops_repository", "dagops_release", [column], ["id"], ondelete="SET NULL")

    op.create_table(
        "dagops_deploy_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("from_release_id", sa.Integer(), nullable=True),
        sa.Column("to_release_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=250), nullable=False),
        sa.Column("reason", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["from_release_id"], ["dagops_release.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["repository_id"], ["dagops_repository.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["to_release_id"], ["dagops_release.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dagops_deploy_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dagops_deploy_event_repository_id"), ["repository_id"], unique=False)

    op.create_table(
        "dagops_finding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("file", sa.String(length=4096), nullable=True),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("hint", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["release_id"], ["dagops_release.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dagops_finding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dagops_finding_release_id"), ["release_id"], unique=False)

    op.create_table(
        "dagops_sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("airflow_run_id", sa.String(length=250), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=True),
        sa.Column("release_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["release_id"], ["dagops_release.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["repository_id"], ["dagops_repository.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dagops_sync_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dagops_sync_run_repository_id"), ["repository_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dagops_sync_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dagops_sync_run_repository_id"))

    op.drop_table("dagops_sync_run")
    with op.batch_alter_table("dagops_finding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dagops_finding_release_id"))

    op.drop_table("dagops_finding")
    with op.batch_alter_table("dagops_deploy_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dagops_deploy_event_repository_id"))

    op.drop_table("dagops_deploy_event")
    with op.batch_alter_table("dagops_release", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dagops_release_repository_id"))

    if not _sqlite():
        for name, _column in _RELEASE_FKS:
            op.drop_constraint(name, "dagops_repository", type_="foreignkey")
    op.drop_table("dagops_release")
    op.drop_table("dagops_repository")

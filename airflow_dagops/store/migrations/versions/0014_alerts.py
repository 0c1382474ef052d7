"""alerts and auto-rollback: two repository options and the alert state per repository

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-12

`alerts` (which Airflow notifiers hear of which events) and `auto_rollback` (when a live release's DAG runs fail
too often) are repository options (airflow_dagops/repositories/options.py). `dagops_alert_state` keeps what the
alerts last said, one row per repository, claimed by compare-and-set so each change is announced once
(airflow_dagops/alerts/state.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dagops_repository") as batch:
        batch.add_column(sa.Column("alerts", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("auto_rollback", sa.JSON(), nullable=True))
    op.create_table(
        "dagops_alert_state",
        sa.Column(
            "repository_id",
            sa.Integer(),
            sa.ForeignKey("dagops_repository.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("health", sa.String(20), nullable=False),
        sa.Column("failed_commit", sa.String(64), nullable=True),
        sa.Column("rolled_back_release_id", sa.Integer(), nullable=True),
        sa.Column("last_event", sa.String(40), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dagops_alert_state")
    with op.batch_alter_table("dagops_repository") as batch:
        batch.drop_column("auto_rollback")
        batch.drop_column("alerts")

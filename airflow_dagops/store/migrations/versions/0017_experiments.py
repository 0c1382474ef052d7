"""A/B experiments: two releases of one DAG on a split of its scheduled runs

Revision ID: 0017
Revises: 0016_live_set
Create Date: 2026-12-14

`dagops_experiment` holds each experiment (repository, dag_id, release A = prod's live release, release B = the
candidate, split, rule, status, the last verdict); `dagops_experiment_run` which variant owns each run, one row per
scheduled logical date (unique: the first variant's gate to ask writes it) or per run of another type
(airflow_dagops/experiments, airflow_dagops/airflow/experiment_gate.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016_live_set"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dagops_experiment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "repository_id", sa.Integer(), sa.ForeignKey("dagops_repository.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("release_a_id", sa.Integer(), sa.ForeignKey("dagops_release.id", ondelete="SET NULL"), nullable=True),
        sa.Column("release_b_id", sa.Integer(), sa.ForeignKey("dagops_release.id", ondelete="SET NULL"), nullable=True),
        sa.Column("split", sa.JSON(), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("assigned", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("winner", sa.String(1), nullable=True),
        sa.Column("verdict", sa.JSON(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_dagops_experiment_repository_id", "dagops_experiment", ["repository_id"])
    op.create_table(
        "dagops_experiment_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "experiment_id", sa.Integer(), sa.ForeignKey("dagops_experiment.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("run_key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("logical_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner", sa.String(1), nullable=False),
        sa.Column("a_run_id", sa.String(250), nullable=True),
        sa.Column("b_run_id", sa.String(250), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("experiment_id", "run_key", name="uq_experiment_run"),
    )


def downgrade() -> None:
    op.drop_table("dagops_experiment_run")
    op.drop_index("ix_dagops_experiment_repository_id", table_name="dagops_experiment")
    op.drop_table("dagops_experiment")

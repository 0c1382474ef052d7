"""release tests: results and JUnit XML of a repository's own tests

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dagops_release") as batch:
        # airflow_dagops/release_tests.summarize(): outcome, counts, failures, per-module JUnit XML.
        batch.add_column(sa.Column("tests", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dagops_release") as batch:
        batch.drop_column("tests")
